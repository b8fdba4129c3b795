package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/myscrollr/connect/shared/ssrf"
)

// userAgent names the checks to the integration.
const userAgent = "MyScrollr-Connect-Check/1"

// answer is a complete answer of the integration.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	url     *url.URL // the URL that answered, after redirects
	elapsed time.Duration
}

// call sends method path (below base_url) and reads the whole answer, at most limit bytes of
// body. On failure it returns a reason that names the path, never the URL (which may carry a
// token in its query) or an address, and the time spent when a request was sent.
func (r *run) call(method, path string, header http.Header, body []byte, limit int64) (answer, string, *time.Duration) {
	what := method + " /" + path
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.CallTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base.JoinPath(path).String(), rd)
	if err != nil {
		return answer{}, what + ": base_url is not a URL", nil
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", userAgent)
	start := r.opts.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		d := r.opts.Now().Sub(start)
		return answer{}, what + ": " + describe(err, r.opts), &d
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	d := r.opts.Now().Sub(start)
	var tooLarge *ssrf.TooLarge
	switch {
	case errors.As(err, &tooLarge), err == nil && int64(len(data)) > limit:
		return answer{}, fmt.Sprintf("%s: body over %d bytes", what, min(limit, limitOf(tooLarge))), &d
	case err != nil:
		return answer{}, what + ": " + describe(err, r.opts), &d
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data, url: resp.Request.URL, elapsed: d}, "", &d
}

func limitOf(e *ssrf.TooLarge) int64 {
	if e == nil {
		return 1<<63 - 1
	}
	return e.Limit
}

// describe says briefly why a request failed (ssrf.Describe: never the URL or an address).
func describe(err error, opts Options) string { return ssrf.Describe(err, opts.CallTimeout) }

// ok2xx says whether status is a success.
func ok2xx(status int) bool { return status >= 200 && status <= 299 }
