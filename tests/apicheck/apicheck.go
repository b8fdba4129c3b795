// Package apicheck holds the HTTP APIs of MyScrollr Connect to their OpenAPI 3.1 description
// (schemas/openapi/connect.yaml): a Checker wraps a test's http.RoundTripper and fails the test
// on every request or response that the description does not allow.
//
// It validates with github.com/pb33f/libopenapi-validator, in its default, path-only server
// matching: the host and port of a request are ignored (tests talk to 127.0.0.1 on a random
// port, the front door, or a function directly), only the path and method find the operation.
// Format assertions are on (date-time, date, uuid), so a timestamp in another layout fails.
//
// What fails a test:
//   - a route (path and method) the description does not have;
//   - a response status the operation does not list (there is no `default` response);
//   - a response body that does not match the schema of that status and content type (an
//     extra field in a closed object, a missing required field, a wrong type), a content
//     type the status does not declare, or a required response header that is missing;
//   - a request that the description refuses but the server accepted (a status below 400).
//
// A request the description refuses is otherwise allowed: tests send bad input on purpose,
// and the server must refuse it, with a 4xx the operation documents and a problem body of the
// documented shape (both checked as above). This keeps the description honest in both
// directions: what it forbids, the server refuses.
package apicheck

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Checker validates requests and responses against one OpenAPI document.
type Checker struct {
	mu    sync.Mutex // the validator's caches are not documented as safe for concurrent use
	v     validator.Validator
	model *v3.Document
}

// New builds a Checker from an OpenAPI 3.1 document (YAML or JSON). It fails when the document
// does not parse, is not OpenAPI 3.1, does not build into a model, or does not validate
// against the OpenAPI 3.1 schema.
func New(spec []byte) (*Checker, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("apicheck: parse: %w", err)
	}
	if v := doc.GetVersion(); !strings.HasPrefix(v, "3.1") {
		return nil, fmt.Errorf("apicheck: the document is OpenAPI %q, want 3.1", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("apicheck: build the model: %w", err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("apicheck: validator: %w", errors.Join(errs...))
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("apicheck: not a valid OpenAPI document:\n%s", describe(verrs))
	}
	return &Checker{v: v, model: &model.Model}, nil
}

// Model is the document's OpenAPI 3 model (for tests that inspect the description itself).
func (c *Checker) Model() *v3.Document { return c.model }

// Check validates one exchange and returns every problem found, each as one line; none means
// the exchange is allowed (see the package documentation). req and resp bodies are read and
// left readable.
func (c *Checker) Check(req *http.Request, resp *http.Response) []string {
	reqBody, err := readAndRestore(&req.Body)
	if err != nil {
		return []string{"request body could not be read: " + err.Error()}
	}
	respBody, err := readAndRestore(&resp.Body)
	if err != nil {
		return []string{"response body could not be read: " + err.Error()}
	}
	// The validator reads bodies; each check gets its own copy, and the caller keeps theirs.
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	vresp := *resp
	vresp.Body = io.NopCloser(bytes.NewReader(respBody))
	vresp.Request = vreq

	c.mu.Lock()
	reqOK, reqErrs := c.v.ValidateHttpRequestSync(vreq)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	respOK, respErrs := c.v.ValidateHttpResponse(vreq, &vresp)
	c.mu.Unlock()

	var out []string
	for _, e := range respErrs {
		if e.IsPathMissingError() || e.IsOperationMissingError() {
			return []string{"undocumented route: " + line(e)}
		}
	}
	if !reqOK && resp.StatusCode < 400 {
		out = append(out, fmt.Sprintf("the server answered %d to a request the description refuses:", resp.StatusCode))
		for _, e := range reqErrs {
			out = append(out, "  request: "+line(e))
		}
	}
	if !respOK {
		for _, e := range respErrs {
			out = append(out, "response: "+line(e))
		}
	}
	return out
}

// Transport returns a RoundTripper that sends through base (http.DefaultTransport when nil)
// and checks every exchange, reporting each problem with t.Errorf naming the method, path and
// status. A failed round trip (no response) is returned as is and not checked.
func (c *Checker) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, t: t, base: base}
}

type transport struct {
	c    *Checker
	t    testing.TB
	base http.RoundTripper
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The request's body is consumed by base; keep a copy to validate. A request without a
	// body is sent without one (an empty reader would be sent chunked, as a body).
	hasBody := req.Body != nil && req.Body != http.NoBody
	body, err := readAndRestore(&req.Body)
	if err != nil {
		return nil, fmt.Errorf("apicheck: read the request body: %w", err)
	}
	bodyOf := func(r *http.Request) *http.Request {
		if hasBody {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		return r
	}
	resp, err := tr.base.RoundTrip(bodyOf(req.Clone(req.Context())))
	if err != nil {
		return resp, err
	}
	checked := bodyOf(req.Clone(req.Context()))
	if problems := tr.c.Check(checked, resp); len(problems) > 0 {
		tr.t.Helper()
		tr.t.Errorf("apicheck: %s %s -> %d does not match schemas/openapi/connect.yaml:\n\t%s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, strings.Join(problems, "\n\t"))
	}
	return resp, nil
}

// readAndRestore reads *body whole and replaces it with a reader of the same bytes.
func readAndRestore(body *io.ReadCloser) ([]byte, error) {
	if *body == nil || *body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(*body)
	_ = (*body).Close()
	*body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// line is one validation error with its schema failures.
func line(e *verrors.ValidationError) string {
	s := e.Message
	if e.Reason != "" && e.Reason != e.Message {
		s += ": " + e.Reason
	}
	var fails []string
	for _, f := range e.SchemaValidationErrors {
		where := f.FieldPath
		if where == "" {
			where = "/" + strings.Join(f.InstancePath, "/")
		}
		reason := f.Reason
		if reason == "false schema" { // unevaluatedProperties: false
			reason = "is not allowed (the object is closed)"
		}
		fails = append(fails, where+" "+reason)
	}
	slices.Sort(fails)
	if len(fails) > 0 {
		s += " [" + strings.Join(fails, "; ") + "]"
	}
	return s
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\t" + line(e) + "\n")
	}
	return b.String()
}
