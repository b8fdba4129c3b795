package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
)

type listing struct {
	Name       string   `json:"name"`
	PriceCents int64    `json:"price_cents"`
	Scopes     []string `json:"scopes"`
	Owner      struct {
		ID string `json:"id"`
	} `json:"owner"`
	Since *time.Time `json:"since,omitempty"`
}

func newRequest(body, contentType string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/listings", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, ct string
		limit          int64
		status         int
		field          string
		detail         string
	}{
		{name: "ok", body: `{"name":"x","price_cents":5,"scopes":["a"],"owner":{"id":"u"}}`, ct: "application/json"},
		{name: "ok charset and trailing space", body: "{\"name\":\"x\"}\n\t ", ct: "application/json; charset=utf-8"},
		{name: "ok +json", body: `{}`, ct: "application/merge-patch+json"},
		{name: "wrong type", body: `{"price_cents":"5"}`, ct: "application/json", status: 400, field: "price_cents", detail: `field "price_cents": expected integer, got string`},
		{name: "nested wrong type", body: `{"owner":{"id":7}}`, ct: "application/json", status: 400, field: "owner.id", detail: `field "owner.id": expected string, got number`},
		{name: "float into int", body: `{"price_cents":1.5}`, ct: "application/json", status: 400, field: "price_cents"},
		{name: "unknown field", body: `{"nme":"x"}`, ct: "application/json", status: 400, field: "nme", detail: `field "nme": unknown field`},
		{name: "syntax", body: `{"name":}`, ct: "application/json", status: 400, detail: "malformed JSON at byte"},
		{name: "truncated", body: `{"name":"x"`, ct: "application/json", status: 400, detail: "unexpected end"},
		{name: "empty", body: ``, ct: "application/json", status: 400, detail: "empty"},
		{name: "trailing data", body: `{} {}`, ct: "application/json", status: 400, detail: "after the JSON value"},
		{name: "trailing garbage", body: `{}x`, ct: "application/json", status: 400, detail: "after the JSON value"},
		{name: "no content type", body: `{}`, status: 400, field: "Content-Type"},
		{name: "text content type", body: `{}`, ct: "text/plain", status: 400, field: "Content-Type"},
		{name: "latin1", body: `{}`, ct: "application/json; charset=latin1", status: 400, field: "Content-Type"},
		{name: "bad time", body: `{"since":"yesterday"}`, ct: "application/json", status: 400, detail: "invalid JSON value"},
		{name: "too large", body: `{"name":"` + strings.Repeat("x", 100) + `"}`, ct: "application/json", limit: 32, status: 413},
		{name: "too large after value", body: `{}` + strings.Repeat(" ", 100), ct: "application/json", limit: 32, status: 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRequest(tc.body, tc.ct)
			if tc.limit > 0 {
				r.ContentLength = -1 // force the streaming limit, not the header shortcut
			}
			var dst listing
			err := httpx.DecodeJSON(r, &dst, tc.limit)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var p *httpx.Problem
			if !errors.As(err, &p) {
				t.Fatalf("want *Problem, got %T %v", err, err)
			}
			if p.Status != tc.status {
				t.Fatalf("status %d, want %d (%v)", p.Status, tc.status, p)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Fatalf("field errors %+v, want field %q", p.Errors, tc.field)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("detail %q does not contain %q", p.Detail, tc.detail)
			}
		})
	}
}

func TestDecodeJSONContentLengthShortcut(t *testing.T) {
	t.Parallel()
	r := newRequest(strings.Repeat(" ", 64)+"{}", "application/json")
	var v map[string]any
	var p *httpx.Problem
	if err := httpx.DecodeJSON(r, &v, 16); !errors.As(err, &p) || p.Status != 413 {
		t.Fatalf("want 413, got %v", err)
	}
}

func TestDecodeJSONProgrammingError(t *testing.T) {
	t.Parallel()
	var v map[string]any
	err := httpx.DecodeJSON(newRequest(`{}`, "application/json"), v, 0) // not a pointer
	var p *httpx.Problem
	if err == nil || errors.As(err, &p) {
		t.Fatalf("want a plain error for a non-pointer dst, got %v", err)
	}
}

// serve runs h through a real HTTP server on 127.0.0.1 and returns the response and the log.
func serve(t *testing.T, h httpx.HandlerFunc) (*http.Response, map[string]any, string) {
	t.Helper()
	var logBuf bytes.Buffer
	logger := logging.New(&logBuf, "test", slog.LevelDebug)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(logging.With(r.Context(), logger.With("request_id", "rid-1"))))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	return resp, body, logBuf.String()
}

func TestHandlerFuncMapsErrors(t *testing.T) {
	t.Parallel()
	t.Run("problem", func(t *testing.T) {
		resp, body, _ := serve(t, func(w http.ResponseWriter, r *http.Request) error {
			return httpx.BadRequest("bad scopes", httpx.FieldError{Field: "manifest.scopes[2]", Reason: "unknown scope"})
		})
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		errs, _ := body["errors"].([]any)
		if body["type"] != "about:blank" || body["title"] != "Bad Request" || body["status"] != float64(400) || len(errs) != 1 {
			t.Fatalf("body %v", body)
		}
	})
	t.Run("wrapped problem", func(t *testing.T) {
		resp, _, _ := serve(t, func(w http.ResponseWriter, r *http.Request) error {
			return fmt.Errorf("load listing: %w", httpx.NotFound("no such listing"))
		})
		if resp.StatusCode != 404 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		resp, _, _ := serve(t, func(w http.ResponseWriter, r *http.Request) error { return httpx.Unauthorized("no token") })
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("internal hides cause, logs it with request id", func(t *testing.T) {
		resp, body, logs := serve(t, func(w http.ResponseWriter, r *http.Request) error {
			return errors.New("pq: password authentication failed")
		})
		if resp.StatusCode != 500 || body["detail"] != "internal error" {
			t.Fatalf("got %d %v", resp.StatusCode, body)
		}
		if strings.Contains(fmt.Sprint(body), "password") {
			t.Fatal("cause leaked to the client")
		}
		if !strings.Contains(logs, "password authentication failed") || !strings.Contains(logs, `"request_id":"rid-1"`) {
			t.Fatalf("cause not logged with request id: %s", logs)
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		resp, body, logs := serve(t, func(w http.ResponseWriter, r *http.Request) error {
			return httpx.Unavailable("database unavailable", errors.New("dial tcp: refused"))
		})
		if resp.StatusCode != 503 || strings.Contains(fmt.Sprint(body), "refused") || !strings.Contains(logs, "refused") {
			t.Fatalf("got %d %v %s", resp.StatusCode, body, logs)
		}
	})
	t.Run("nil", func(t *testing.T) {
		resp, body, _ := serve(t, func(w http.ResponseWriter, r *http.Request) error {
			httpx.WriteJSON(w, http.StatusCreated, map[string]int{"n": 1})
			return nil
		})
		if resp.StatusCode != 201 || body["n"] != float64(1) || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %v", resp.StatusCode, body)
		}
	})
}

func TestHandlerFuncClientGone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("query: %w", r.Context().Err())
	}).ServeHTTP(w, r)
	if w.Body.Len() != 0 || len(w.Header()) != 0 {
		t.Fatalf("nothing must be written, got %q %v", w.Body.String(), w.Header())
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	httpx.WriteJSON(w, 200, map[string]any{"f": func() {}})
	if w.Code != 500 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("got %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}

func ExampleDecodeJSON() {
	r, _ := http.NewRequest(http.MethodPost, "/v1/listings", strings.NewReader(`{"price_cents":"12"}`))
	r.Header.Set("Content-Type", "application/json")
	var v struct {
		PriceCents int `json:"price_cents"`
	}
	err := httpx.DecodeJSON(r, &v, httpx.DefaultMaxBody)
	fmt.Println(err)
	// Output: 400 Bad Request: field "price_cents": expected integer, got string
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"name":"x","price_cents":5,"scopes":["a"],"owner":{"id":"u"}}`), "application/json")
	f.Add([]byte(`{"price_cents":"5"}`), "application/json")
	f.Add([]byte(`{"since":"2020-01-01T00:00:00Z"}`), "application/json; charset=utf-8")
	f.Add([]byte(`{} {}`), "application/json")
	f.Add([]byte(`[1,2`), "application/json")
	f.Add([]byte(`{"scopes":[1]}`), "application/vnd.x+json")
	f.Add([]byte(strings.Repeat("[", 300)), "application/json")
	f.Add([]byte(`{}`), "text/plain;;")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		r.ContentLength = -1
		var dst listing
		err := httpx.DecodeJSON(r, &dst, 256)
		if err == nil {
			return
		}
		var p *httpx.Problem
		if !errors.As(err, &p) {
			t.Fatalf("non-problem error %T %v", err, err)
		}
		if p.Status != 400 && p.Status != 413 {
			t.Fatalf("status %d", p.Status)
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("problem not encodable: %v", err)
		}
	})
}
