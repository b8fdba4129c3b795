package logto

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a scripted Management API on 127.0.0.1 for the client's own
// behaviour (token cache, retries, errors); the end-to-end test against the
// development identity server lives in shared/idp.
type server struct {
	t          *testing.T
	srv        *httptest.Server
	tokens     atomic.Int64
	mu         sync.Mutex
	seen       []route
	respond    func(w http.ResponseWriter, r *http.Request) bool // true if handled
	tokenValid string
}

func newServer(t *testing.T) *server {
	s := &server{t: t, tokenValid: "tok-1"}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oidc/token" {
			id, secret, _ := r.BasicAuth()
			_ = r.ParseForm()
			if id != "m2m" || secret != "s3cret" || r.PostForm.Get("grant_type") != "client_credentials" ||
				r.PostForm.Get("resource") != DefaultResource || r.PostForm.Get("scope") != "all" {
				w.WriteHeader(401)
				return
			}
			n := s.tokens.Add(1)
			s.mu.Lock()
			tok := s.tokenValid
			s.mu.Unlock()
			_ = n
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": 3600, "token_type": "Bearer"})
			return
		}
		s.mu.Lock()
		if rt, ok := matchRoute(r.Method, r.URL.Path); ok {
			s.seen = append(s.seen, rt)
		} else {
			t.Errorf("request %s %s matches no known route", r.Method, r.URL.Path)
		}
		tok := s.tokenValid
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+tok {
			w.WriteHeader(401)
			return
		}
		if s.respond != nil && s.respond(w, r) {
			return
		}
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"code":"entity.not_exists","message":"nothing here"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) client(t *testing.T) *Client {
	c, err := New(Config{Endpoint: s.srv.URL, AppID: "m2m", AppSecret: "s3cret", HTTPClient: s.srv.Client(),
		Logger: slog.New(slog.DiscardHandler), BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigValidation(t *testing.T) {
	for want, cfg := range map[string]Config{
		"Config.Endpoint (LOGTO_ENDPOINT) is required": {AppID: "a", AppSecret: "b"},
		"must be an http(s) URL":                       {Endpoint: "127.0.0.1:3001", AppID: "a", AppSecret: "b"},
		"Config.AppID":                                 {Endpoint: "http://x", AppSecret: "b"},
		"Config.AppSecret":                             {Endpoint: "http://x", AppID: "a"},
		"Config.MaxAttempts":                           {Endpoint: "http://x", AppID: "a", AppSecret: "b", MaxAttempts: 99},
	} {
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func TestTokenCachedAndRenewedOn401(t *testing.T) {
	s := newServer(t)
	s.respond = func(w http.ResponseWriter, r *http.Request) bool {
		_, _ = io.WriteString(w, `{"grants":[]}`)
		return true
	}
	c := s.client(t)
	ctx := context.Background()
	for range 3 {
		if _, err := c.ListGrants(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.tokens.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	s.mu.Lock()
	s.tokenValid = "tok-2" // the old token no longer works
	s.mu.Unlock()
	if _, err := c.ListGrants(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if n := s.tokens.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

func TestRetries(t *testing.T) {
	s := newServer(t)
	var calls atomic.Int64
	s.respond = func(w http.ResponseWriter, r *http.Request) bool {
		n := calls.Add(1)
		switch {
		case r.Method == http.MethodGet && n < 3:
			w.WriteHeader(502)
		case r.Method == http.MethodGet:
			_, _ = io.WriteString(w, `{"grants":[]}`)
		case r.Method == http.MethodPost:
			w.WriteHeader(500)
			_, _ = io.WriteString(w, `{"code":"oops","message":"boom"}`)
		}
		return true
	}
	c := s.client(t)
	if _, err := c.ListGrants(context.Background(), "u1"); err != nil || calls.Load() != 3 {
		t.Fatalf("GET after two 502s: %v (%d calls)", err, calls.Load())
	}
	calls.Store(0)
	_, err := c.CreateApplication(context.Background(), NewApplication{Name: "x", RedirectURIs: []string{"https://x/cb"}})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Code != "oops" || ae.Message != "boom" || calls.Load() != 1 {
		t.Fatalf("POST 500 must not be retried: %v (%d calls)", err, calls.Load())
	}
}

func TestRetriesBounded(t *testing.T) {
	s := newServer(t)
	var calls atomic.Int64
	s.respond = func(w http.ResponseWriter, r *http.Request) bool {
		calls.Add(1)
		w.WriteHeader(429)
		return true
	}
	c := s.client(t)
	err := c.DeleteApplication(context.Background(), "a1")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 429 || calls.Load() != 4 {
		t.Fatalf("got %v after %d calls, want 429 after 4", err, calls.Load())
	}
}

func TestNotFoundAndIdempotentDelete(t *testing.T) {
	s := newServer(t)
	c := s.client(t)
	if _, err := c.GetApplication(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetApplication: %v", err)
	}
	if err := c.DeleteApplication(context.Background(), "missing"); err != nil {
		t.Fatalf("DeleteApplication of a missing app: %v", err)
	}
}

func TestResponseBounded(t *testing.T) {
	s := newServer(t)
	s.respond = func(w http.ResponseWriter, r *http.Request) bool {
		_, _ = io.WriteString(w, `{"grants":[`+strings.Repeat(" ", maxBody)+`]}`)
		return true
	}
	if _, err := s.client(t).ListGrants(context.Background(), "u1"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func TestRevokeGrantsFiltersByApplication(t *testing.T) {
	s := newServer(t)
	var deleted []string
	s.respond = func(w http.ResponseWriter, r *http.Request) bool {
		switch r.Method {
		case http.MethodGet:
			if r.URL.Query().Get("appType") != "thirdParty" {
				t.Errorf("appType = %q", r.URL.Query().Get("appType"))
			}
			_, _ = io.WriteString(w, `{"grants":[
			 {"id":"g1","expiresAt":1,"payload":{"clientId":"a1","accountId":"u1"},"application":{"id":"a1","name":"A"}},
			 {"id":"g2","expiresAt":1,"payload":{"clientId":"a2","accountId":"u1"},"application":{"id":"a2","name":"B"}},
			 {"id":"g3","expiresAt":1,"payload":{"clientId":"a1","accountId":"u1"},"application":{"id":"a1","name":"A"}}]}`)
		case http.MethodDelete:
			deleted = append(deleted, r.URL.Path)
			if strings.HasSuffix(r.URL.Path, "/g3") {
				w.WriteHeader(404) // already gone
				return true
			}
			w.WriteHeader(204)
		}
		return true
	}
	n, err := s.client(t).RevokeGrants(context.Background(), "u1", "a1")
	if err != nil || n != 2 {
		t.Fatalf("RevokeGrants = %d, %v", n, err)
	}
	if strings.Join(deleted, ",") != "/api/users/u1/grants/g1,/api/users/u1/grants/g3" {
		t.Fatalf("deleted %v", deleted)
	}
}

// TestRequestsMatchContract checks that every request made by the tests
// above matched a route template (newServer fails the test otherwise).
func TestRequestsMatchContract(t *testing.T) {
	known := contractRoutes(t)
	for _, r := range routes {
		if _, ok := matchRoute(r.Method, paramRE.ReplaceAllString(r.Path, "x")); !ok || !known[r] {
			t.Errorf("route %v", r)
		}
	}
}
