package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"sync"
	"testing"
)

// TestRedirectTargetsRefused: an allowed loopback server redirects to refused targets. Only
// the first hop's exact address is allowed, so every target, even on 127.0.0.1, is checked
// anew and refused; the canaries see nothing.
func TestRedirectTargetsRefused(t *testing.T) {
	can := startCanaries(t, 1)
	port := can.ports[0]
	srv := startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	rec := newRecorder()
	rec.add("internal.test", "127.0.0.1")
	rec.add("meta.test", "169.254.169.254")
	c := mustClient(t, Config{AllowHTTP: true, Ports: []uint16{port}, Allow: []Destination{srv.dest()}}, rec.hooks())
	targets := map[string]Reason{
		fmt.Sprintf("http://127.0.0.1:%d/", port):            ReasonLoopback,
		fmt.Sprintf("http://localhost:%d/", port):            ReasonLoopback,
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port):   ReasonLoopback,
		fmt.Sprintf("http://[::127.0.0.1]:%d/", port):        ReasonLoopback,
		fmt.Sprintf("http://2130706433:%d/", port):           ReasonHost,
		fmt.Sprintf("http://internal.test:%d/", port):        ReasonLoopback, // refused when dialed
		fmt.Sprintf("http://meta.test:%d/", port):            ReasonMetadata,
		"http://169.254.169.254/latest/meta-data/":           ReasonMetadata,
		"http://[fd00:ec2::254]/":                            ReasonMetadata,
		"http://10.0.0.1/":                                   ReasonPrivate,
		"file:///etc/passwd":                                 ReasonScheme,
		fmt.Sprintf("gopher://127.0.0.1:%d/", port):          ReasonScheme,
		"https://user:pw@example.com/":                       ReasonUserinfo,
		"https://example.com:22/":                            ReasonPort,
		fmt.Sprintf("http://127.0.0.1:%d/", srv.ap.Port()+1): ReasonLoopback, // the allowed address, another port
	}
	for to, want := range targets {
		_, err := get(c, srv.url("/r?to="+urlQueryEscape(to)))
		var r *Refused
		if !errors.As(err, &r) || r.Reason != want {
			t.Errorf("redirect to %s: %v, want refused %q", to, err, want)
		}
	}
	if srv.hits.Load() != int64(len(targets)) {
		t.Errorf("first hops = %d, want %d", srv.hits.Load(), len(targets))
	}
	if n := can.accepts.Load(); n != 0 {
		t.Errorf("canary accepted %d connections, want 0", n)
	}
	if a := rec.attempts(); len(a) != 0 {
		t.Errorf("non-loopback dials: %v", a)
	}
}

// TestRedirectCredentials: Authorization and Cookie follow a redirect to the same origin only.
func TestRedirectCredentials(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	record := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			seen[name+r.URL.Path] = r.Header.Clone()
		})
	}
	b := startAllowed(t, record("b"))
	var a *allowedServer
	a = startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-b":
			http.Redirect(w, r, b.url("/echo"), http.StatusFound)
		case "/to-self":
			http.Redirect(w, r, a.url("/echo"), http.StatusFound)
		default:
			record("a").ServeHTTP(w, r)
		}
	}))
	c := mustClient(t, Config{Allow: []Destination{a.dest(), b.dest()}}, hooks{})
	for _, path := range []string{"/to-b", "/to-self"} {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, a.url(path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer secret")
		req.Header.Set("Cookie", "session=secret")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if h := seen["b/echo"]; h == nil || h.Get("Authorization") != "" || h.Get("Cookie") != "" {
		t.Errorf("other origin got %v, want no Authorization or Cookie", h)
	}
	if h := seen["a/echo"]; h == nil || h.Get("Authorization") != "Bearer secret" || h.Get("Cookie") != "session=secret" {
		t.Errorf("same origin got %v, want Authorization and Cookie kept", h)
	}
}

func TestNoRedirects(t *testing.T) {
	srv := startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	c := mustClient(t, Config{Allow: []Destination{srv.dest()}, MaxRedirects: -1}, hooks{})
	code, err := get(c, srv.url("/"))
	if err != nil || code != http.StatusFound || srv.hits.Load() != 1 {
		t.Errorf("got %d, %v after %d hits; want the 302 itself", code, err, srv.hits.Load())
	}
}

// TestDialHookStandsAlone: the transport's dialer refuses on its own, without the URL check.
func TestDialHookStandsAlone(t *testing.T) {
	can := startCanaries(t, 1)
	c := mustClient(t, Config{Ports: can.ports}, hooks{})
	for _, addr := range []string{
		fmt.Sprintf("127.0.0.1:%d", can.ports[0]),
		fmt.Sprintf("[::ffff:127.0.0.1]:%d", can.ports[0]),
		fmt.Sprintf("localhost:%d", can.ports[0]),
		fmt.Sprintf("2130706433:%d", can.ports[0]),
		fmt.Sprintf("127.1:%d", can.ports[0]),
	} {
		conn, err := c.base.DialContext(context.Background(), "tcp", addr)
		if conn != nil {
			conn.Close()
		}
		var r *Refused
		if !errors.As(err, &r) {
			t.Errorf("dial %s: %v, want *Refused", addr, err)
		}
	}
	if n := can.accepts.Load(); n != 0 {
		t.Errorf("canary accepted %d connections, want 0", n)
	}
}

// TestEnvironmentProxyIgnored: HTTP(S)_PROXY pointing at a canary is not used.
func TestEnvironmentProxyIgnored(t *testing.T) {
	can := startCanaries(t, 1)
	proxy := fmt.Sprintf("http://127.0.0.1:%d", can.ports[0])
	t.Setenv("HTTP_PROXY", proxy)
	t.Setenv("HTTPS_PROXY", proxy)
	rec := newRecorder()
	rec.add("public.test", "93.184.215.14")
	c := mustClient(t, Config{AllowHTTP: true}, rec.hooks())
	for _, u := range []string{"http://public.test/", "https://public.test/"} {
		if _, err := get(c, u); !errors.Is(err, errNoConnect) {
			t.Errorf("%s: %v, want a direct dial", u, err)
		}
	}
	if a := rec.attempts(); len(a) != 2 || a[0].Addr() != netip.MustParseAddr("93.184.215.14") {
		t.Errorf("dials = %v, want two to 93.184.215.14", a)
	}
	if n := can.accepts.Load(); n != 0 {
		t.Errorf("proxy canary accepted %d connections, want 0", n)
	}
}

// TestClientHasNoExportedFields: callers cannot swap the transport or the redirect policy.
func TestClientHasNoExportedFields(t *testing.T) {
	ty := reflect.TypeFor[Client]()
	for i := range ty.NumField() {
		if f := ty.Field(i); f.IsExported() {
			t.Errorf("Client.%s is exported; the checks could be bypassed through it", f.Name)
		}
	}
}
