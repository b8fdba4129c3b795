// Package stripemock starts stripe-mock (Stripe's own mock of its API, pinned as a Go tool in
// the shared module: `go tool stripe-mock`) on loopback for a test, behind a recording proxy.
//
// stripe-mock keeps no state: it answers every create with a fixture and never remembers an
// idempotency key. What a test can prove with it is what was sent, so every request that
// passes the proxy is recorded (method, path, Idempotency-Key, Stripe-Account, the form) and
// then forwarded unchanged.
package stripemock

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request is one request that passed the proxy.
type Request struct {
	Method         string
	Path           string
	IdempotencyKey string
	StripeAccount  string
	StripeVersion  string
	Form           url.Values
}

// Server is a running stripe-mock and the recording proxy in front of it.
type Server struct {
	// URL is the proxy's base URL: give it to payments.Config.APIBase.
	URL string
	// Direct is stripe-mock's own HTTP URL (no recording).
	Direct string

	mu       sync.Mutex
	requests []Request
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds (once per test binary) the stripe-mock tool and returns its path.
func binary() (string, error) {
	binOnce.Do(func() {
		out, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			binErr = fmt.Errorf("stripemock: go tool -n stripe-mock: %v %s", err, stderr)
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	return binPath, binErr
}

// Start runs stripe-mock on 127.0.0.1 (HTTP and HTTPS, ports chosen by the system) and a
// recording proxy, both stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("stripemock: start: %v", err)
	}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		const prefix = "Listening for HTTP at address: "
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { cancel(); <-exited })
	var direct string
	select {
	case a := <-addr:
		direct = "http://" + a
	case <-exited:
		tb.Fatalf("stripemock: stripe-mock exited before listening: %s", stderr.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("stripemock: stripe-mock did not listen within 60s: %s", stderr.String())
	}
	s := &Server{Direct: direct}
	target, err := url.Parse(direct)
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form, _ := url.ParseQuery(string(body))
		s.mu.Lock()
		s.requests = append(s.requests, Request{
			Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"),
			StripeAccount: r.Header.Get("Stripe-Account"), StripeVersion: r.Header.Get("Stripe-Version"), Form: form,
		})
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Requests returns the requests recorded so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestsTo returns the recorded requests with this method and path.
func (s *Server) RequestsTo(method, path string) []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}
