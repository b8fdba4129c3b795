package stack

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/myscrollr/connect/shared/httpx"
)

// Route sends requests whose path starts with Prefix (and, if set, whose method is Method) to
// Function. The first matching route wins.
type Route struct {
	Method   string
	Prefix   string
	Function string
}

// Routes is the front door's table. In production KrakenD plays this part (infra/krakend).
var Routes = []Route{
	{Method: http.MethodGet, Prefix: "/v1/integrations", Function: "catalog"},
	{Method: http.MethodPost, Prefix: "/v1/webhooks/logto", Function: "logto-webhook"},
}

func (s *Stack) startFrontDoor() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("stack: front door on %s: %w (set FRONT_DOOR_ADDR to use another address)", s.cfg.Addr, err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.frontDoor = &http.Server{Handler: frontDoor(Routes, s.Functions)}
	go s.frontDoor.Serve(ln)
	s.log.Info("front door listening", "url", s.URL)
	return nil
}

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
		pathMatched := false
		for _, rt := range routes {
			if r.URL.Path != rt.Prefix && !strings.HasPrefix(r.URL.Path, rt.Prefix+"/") {
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
