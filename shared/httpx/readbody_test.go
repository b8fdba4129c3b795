package httpx_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myscrollr/connect/shared/httpx"
)

func TestReadBody(t *testing.T) {
	t.Parallel()
	const limit = 16
	for _, c := range []struct {
		name   string
		body   io.Reader
		length int64 // Content-Length; -1 unknown (chunked)
		want   string
		status int
	}{
		{"exact bytes", strings.NewReader("{\"a\":1}\r\n\x00\xff"), 11, "{\"a\":1}\r\n\x00\xff", 0},
		{"at the limit", strings.NewReader(strings.Repeat("x", limit)), limit, strings.Repeat("x", limit), 0},
		{"empty", http.NoBody, 0, "", 0},
		{"declared too large", strings.NewReader("x"), limit + 1, "", http.StatusRequestEntityTooLarge},
		{"chunked too large", strings.NewReader(strings.Repeat("x", limit+1)), -1, "", http.StatusRequestEntityTooLarge},
		{"read error", io.MultiReader(strings.NewReader("par"), errReader{}), -1, "", http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/v1/webhooks/logto", c.body)
			r.ContentLength = c.length
			w := httptest.NewRecorder()
			body, p := httpx.ReadBody(w, r, limit)
			if c.status == 0 {
				if p != nil || string(body) != c.want {
					t.Fatalf("ReadBody = %q, %v; want %q", body, p, c.want)
				}
				return
			}
			if p == nil || p.Status != c.status || body != nil {
				t.Fatalf("ReadBody = %q, %v; want a %d problem", body, p, c.status)
			}
			if c.status == http.StatusRequestEntityTooLarge && !strings.Contains(p.Detail, "16 bytes") {
				t.Errorf("413 detail %q does not name the limit", p.Detail)
			}
			if c.status == http.StatusBadRequest && !errors.Is(p, errBroken) {
				t.Errorf("400 problem does not keep the read error for the log: %v", p.Cause)
			}
		})
	}
}

func TestReadBodyDefaultLimit(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", httpx.DefaultMaxBody+1)))
	r.ContentLength = -1
	if _, p := httpx.ReadBody(httptest.NewRecorder(), r, 0); p == nil || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("limit 0 = DefaultMaxBody: got %v", p)
	}
}

var errBroken = errors.New("connection reset")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }
