package stack

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/httpx"
)

// backend is a stand-in function that records the raw query of every request it receives.
type backend struct {
	srv     *httptest.Server
	mu      sync.Mutex
	queries []string
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.queries = append(b.queries, r.URL.RawQuery)
		b.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.queries...)
}

// The front door answers 400 naming "query" for a query string it cannot parse, instead of
// forwarding what it could parse of it; a query it can parse is forwarded byte for byte.
func TestFrontDoorRefusesUnparsableQueries(t *testing.T) {
	fn := newBackend(t)
	door := httptest.NewServer(frontDoor(Routes, map[string]string{"catalog": fn.srv.URL}))
	t.Cleanup(door.Close)

	// net/url parses at most 10,000 parameters.
	many := strings.TrimSuffix(strings.Repeat("tag=a&", 10_000), "&")
	for name, query := range map[string]string{
		"10,001 parameters":  many + "&tag=b",
		"malformed escape":   "q=%zz",
		"truncated escape":   "q=ab%4",
		"semicolon":          "q=a;sort=name",
		"escape in the name": "%gg=1",
	} {
		resp, err := door.Client().Get(door.URL + "/v1/integrations?" + query)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d %s, want 400", name, resp.StatusCode, body)
			continue
		}
		if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/problem+json" {
			t.Errorf("%s: content-type %q", name, resp.Header.Get("Content-Type"))
		}
		var p httpx.Problem
		if err := json.Unmarshal(body, &p); err != nil || len(p.Errors) != 1 || p.Errors[0].Field != "query" || p.Errors[0].Reason == "" {
			t.Errorf("%s: problem %s does not name the query (%v)", name, body, err)
		}
	}
	if got := fn.received(); len(got) != 0 {
		t.Fatalf("the function received %d refused requests", len(got))
	}

	for _, query := range []string{many, "q=caf%C3%A9&tag=a&tag=b", ""} {
		resp, err := door.Client().Get(door.URL + "/v1/integrations?" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("parsable query of %d bytes: status %d", len(query), resp.StatusCode)
		}
		got := fn.received()
		if last := got[len(got)-1]; last != query {
			t.Fatalf("forwarded query of %d bytes as %d bytes: %.80q", len(query), len(last), last)
		}
	}
}

// A client that trickles its body is cut off at the front door's read limit, while another
// client is served.
func TestFrontDoorCutsOffSlowClients(t *testing.T) {
	fn := newBackend(t)
	slowFn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(slowFn.Close)
	routes := []Route{{Method: http.MethodPost, Prefix: "/v1/webhooks/logto", Function: "logto-webhook"},
		{Method: http.MethodGet, Prefix: "/v1/integrations", Function: "catalog"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limit := 300 * time.Millisecond
	srv := newFrontDoorServer(frontDoor(routes, map[string]string{"catalog": fn.srv.URL, "logto-webhook": slowFn.URL}),
		serverLimits{ReadHeader: limit, Read: limit, Idle: limit})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "POST /v1/webhooks/logto HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); wg.Wait() })
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range 100 {
			if _, err := conn.Write([]byte("b")); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	})

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("http://" + ln.Addr().String() + "/v1/integrations")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another client: status %d", resp.StatusCode)
	}

	// The failsafe deadline is for a front door that never cuts the client off; it is not a
	// timing assertion.
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the front door kept the trickling client (read %q)", got)
	}
	if strings.HasPrefix(string(got), "HTTP/1.1 200") {
		t.Fatalf("the trickled request succeeded: %q", got)
	}
}

// Prefixes match whole segments, and "*" matches one non-empty segment.
func TestFrontDoorPrefixSegments(t *testing.T) {
	for _, c := range []struct {
		path, prefix string
		want         bool
	}{
		{"/v1/integrations", "/v1/integrations", true},
		{"/v1/integrations/", "/v1/integrations", true},
		{"/v1/integrations/x/reviews", "/v1/integrations", true},
		{"/v1/integrationsx", "/v1/integrations", false},
		{"/v1", "/v1/integrations", false},
		{"/v1/developer/integrations/demo/rejections", "/v1/developer/integrations/*/rejections", true},
		{"/v1/developer/integrations/demo/rejections/", "/v1/developer/integrations/*/rejections", true},
		{"/v1/developer/integrations//rejections", "/v1/developer/integrations/*/rejections", false},
		{"/v1/developer/integrations/demo", "/v1/developer/integrations/*/rejections", false},
		{"/v1/developer/integrations/demo/publish", "/v1/developer/integrations/*/rejections", false},
		{"/v1/developer/integrations/demo/rejectionsx", "/v1/developer/integrations/*/rejections", false},
	} {
		if got := hasPrefix(c.path, c.prefix); got != c.want {
			t.Errorf("hasPrefix(%q, %q) = %v, want %v", c.path, c.prefix, got, c.want)
		}
	}
}
