package stack

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/myscrollr/connect/shared/httpx"
)

// Route sends requests whose path starts with Prefix (and, if set, whose method is Method) to
// Function. A segment "*" of Prefix matches any one non-empty path segment. The first matching
// route wins, so a narrower route goes before a wider one.
type Route struct {
	Method   string
	Prefix   string
	Function string
}

// Routes is the front door's table. In production KrakenD plays this part (infra/krakend).
var Routes = []Route{
	{Method: http.MethodGet, Prefix: "/v1/integrations", Function: "catalog"},
	{Method: http.MethodPost, Prefix: "/v1/webhooks/logto", Function: "logto-webhook"},
	{Method: http.MethodPost, Prefix: "/v1/webhooks/stripe", Function: "stripe-webhook"},
	// Records a pull source's polls refused (functions/poll/doc.go).
	{Method: http.MethodGet, Prefix: "/v1/developer/integrations/*/rejections", Function: "poll"},
	// Lifecycle deliveries: the developer's log and redelivery, the integration's catch-up, the
	// platform's public signing keys (functions/notify/doc.go).
	{Prefix: "/v1/developer/integrations/*/deliveries", Function: "notify"},
	{Method: http.MethodGet, Prefix: "/v1/integration/events", Function: "notify"},
	{Method: http.MethodGet, Prefix: "/v1/lifecycle/keys", Function: "notify"},
	{Prefix: "/v1/developer", Function: "registry"},
	{Prefix: "/v1/admin", Function: "registry"},
	{Method: http.MethodPut, Prefix: "/v1/integrations/*/reviews/mine", Function: "catalog"},
	{Method: http.MethodDelete, Prefix: "/v1/integrations/*/reviews/mine", Function: "catalog"},
	// Installs: a user's own revocation goes to uninstall, everything else to install
	// (functions/install/doc.go), including the integration claiming a user's tokens.
	{Method: http.MethodDelete, Prefix: "/v1/installs/*", Function: "uninstall"},
	{Prefix: "/v1/installs", Function: "install"},
	{Method: http.MethodPost, Prefix: "/v1/integration/installs/*/token", Function: "install"},
	{Method: http.MethodPost, Prefix: "/v1/ingest", Function: "ingest"},
}

// listenFrontDoor binds the front door's address and sets s.URL; serveFrontDoor serves on it.
func (s *Stack) listenFrontDoor() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("stack: front door on %s: %w (set FRONT_DOOR_ADDR to use another address)", s.cfg.Addr, err)
	}
	s.URL = "http://" + ln.Addr().String()
	return ln, nil
}

func (s *Stack) serveFrontDoor(ln net.Listener) {
	s.frontDoor = newFrontDoorServer(frontDoor(Routes, s.Functions), frontDoorLimits)
	go s.frontDoor.Serve(ln)
	s.log.Info("front door listening", "url", s.URL)
}

// serverLimits bound how long a slow client may hold a connection.
type serverLimits struct {
	ReadHeader time.Duration // to read the request header
	Read       time.Duration // to read the whole request, header and body
	Idle       time.Duration // between requests on a kept-alive connection
}

// frontDoorLimits are the front door's, the same as the functions' behind it
// (shared/runtime/timeouts.go says why): a client that trickles its header or body is cut off,
// and there is no write timeout, which would also cut off a function that legitimately takes
// long to answer.
var frontDoorLimits = serverLimits{ReadHeader: 10 * time.Second, Read: 15 * time.Second, Idle: 90 * time.Second}

func newFrontDoorServer(h http.Handler, l serverLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    64 << 10,
	}
}

// frontDoor routes requests to the functions. A query string it cannot parse (a bad
// %-escape, a ';' separator, more parameters than net/url accepts) is refused with 400 naming
// "query": httputil.ReverseProxy would otherwise forward such a query re-encoded from what it
// could parse, which may be nothing at all, and the function would answer a different request
// from the one the client sent.
func frontDoor(routes []Route, functions map[string]string) http.Handler {
	proxies := map[string]*httputil.ReverseProxy{}
	for name, base := range functions {
		target, _ := url.Parse(base)
		proxies[name] = &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.SetXForwarded()
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				httpx.WriteProblem(w, r, &httpx.Problem{Title: "Bad Gateway", Status: http.StatusBadGateway,
					Detail: "the " + name + " function did not answer", Cause: err})
			},
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			httpx.WriteProblem(w, r, httpx.BadRequest("malformed query string",
				httpx.FieldError{Field: "query", Reason: err.Error()}))
			return
		}
		pathMatched := false
		for _, rt := range routes {
			if !hasPrefix(r.URL.Path, rt.Prefix) {
				continue
			}
			pathMatched = true
			if rt.Method != "" && rt.Method != r.Method {
				continue
			}
			p, ok := proxies[rt.Function]
			if !ok {
				httpx.WriteProblem(w, r, httpx.Unavailable("the "+rt.Function+" function is not running in this stack", errors.New("not started")))
				return
			}
			p.ServeHTTP(w, r)
			return
		}
		if pathMatched {
			httpx.WriteProblem(w, r, httpx.MethodNotAllowed(r.Method))
			return
		}
		httpx.WriteProblem(w, r, httpx.NotFound("no route for "+r.URL.Path))
	})
}

// hasPrefix reports whether path is prefix or below it, segment by segment, a "*" segment of
// prefix matching any one non-empty segment.
func hasPrefix(path, prefix string) bool {
	ps, want := strings.Split(path, "/"), strings.Split(prefix, "/")
	if len(ps) < len(want) {
		return false
	}
	for i, w := range want {
		if ps[i] != w && (w != "*" || ps[i] == "") {
			return false
		}
	}
	return true
}
