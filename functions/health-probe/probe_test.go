package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/myscrollr/connect/events"
)

// TestProbeReasons: failures are told apart, and a reason never repeats the URL (which may
// carry a token) or the address.
func TestProbeReasons(t *testing.T) {
	cfg := testConfig("postgres://u@127.0.0.1/db")
	p, err := NewProber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + closed.Addr().String() + "/secret-token"
	closed.Close()
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	anyPath := func(h http.HandlerFunc) string { // serves /health below any base path
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/health") {
				http.NotFound(w, r)
				return
			}
			h(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	redirect := anyPath(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	ok := anyPath(answer(200, `{"status":"ok"}`))
	for _, tc := range []struct{ url, status, reason string }{
		{ok + "/secret-token", events.HealthHealthy, ""},
		{ok + "/", events.HealthHealthy, ""},
		{closedURL, events.HealthOffline, "connection refused"},
		{tlsSrv.URL + "/secret-token", events.HealthOffline, "TLS: certificate not valid for the host"},
		{redirect + "/secret-token", events.HealthOffline, "refused by the SSRF rules: metadata"},
		{"https://[fd00:ec2::254]/secret-token", events.HealthOffline, "refused by the SSRF rules: metadata"},
		{"https://127.1/secret-token", events.HealthOffline, "refused by the SSRF rules: host"},
		{"ftp://example.com/secret-token", events.HealthOffline, "base_url is not an http(s) URL"},
		{"::not a url", events.HealthOffline, "base_url is not an http(s) URL"},
	} {
		r := p.Probe(context.Background(), tc.url)
		if r.Status != tc.status || r.Reason != tc.reason {
			t.Errorf("%s: %+v, want %s %q", tc.url, r, tc.status, tc.reason)
		}
		if strings.Contains(r.Reason, "secret") || strings.Contains(r.Reason, "127.0.0.1") {
			t.Errorf("%s: reason %q repeats the URL or address", tc.url, r.Reason)
		}
	}
	// A cancelled sweep is not reported as the integration's timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := p.Probe(ctx, ok); r.Status != events.HealthOffline || r.Reason != "cancelled" {
		t.Errorf("cancelled: %+v", r)
	}
}
