package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/myscrollr/connect/shared/httpx"
	"github.com/myscrollr/connect/shared/logging"
)

// Reserved paths.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"
	PathEvents  = "/events"
)

// server is the http.Handler stack shared by Serve and the Lambda adapter.
type server struct {
	fn      Function
	d       Deps
	m       *metrics
	drain   *drainer
	metrics http.Handler
	now     func() time.Time
}

func newServer(fn Function, d Deps) (*server, error) {
	if fn.Name == "" {
		return nil, errors.New("runtime: Function.Name is empty")
	}
	m, err := newMetrics(d.Registry, fn.Name)
	if err != nil {
		return nil, fmt.Errorf("runtime: register metrics: %w", err)
	}
	return &server{
		fn:      fn,
		d:       d,
		m:       m,
		drain:   newDrainer(time.Now),
		metrics: promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(d.Logger.Handler(), slog.LevelError)}),
		now:     time.Now,
	}, nil
}

// ServeHTTP is the middleware every request passes: request id, request logger, panic
// recovery, access log and metrics, then routing.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = rand.Text()
	}
	w.Header().Set("X-Request-Id", id)
	log := s.d.Logger.With(slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path))
	r = r.WithContext(logging.With(r.Context(), log))
	probe := r.URL.Path == PathHealth || r.URL.Path == PathReady || r.URL.Path == PathMetrics
	if !probe {
		s.drain.Begin()
		defer s.drain.End()
	}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("panic serving request", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if !rec.wrote {
				httpx.WriteProblem(rec, r, httpx.Internal(fmt.Errorf("panic: %v", v)))
			}
		}
		code := rec.code
		if !rec.wrote {
			code = http.StatusOK
			if r.Context().Err() != nil {
				code = httpx.StatusClientClosedRequest
			}
		}
		route := r.Pattern
		if route == "" {
			route = "other"
		}
		method := methodLabel(r.Method)
		elapsed := s.now().Sub(start)
		s.m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
		s.m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if probe {
			level = slog.LevelDebug
		}
		log.LogAttrs(r.Context(), level, "request", slog.Int("status", code), slog.String("route", route),
			slog.Int64("bytes", rec.bytes), slog.Duration("duration", elapsed))
	}()
	s.route(rec, r)
}

func (s *server) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathHealth, PathReady, PathMetrics:
		r.Pattern = r.URL.Path
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpx.WriteProblem(w, r, httpx.MethodNotAllowed(r.Method))
			return
		}
		switch r.URL.Path {
		case PathHealth:
			httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		case PathReady:
			s.serveReady(w, r)
		default:
			s.metrics.ServeHTTP(w, r)
		}
		return
	case PathEvents:
		if s.fn.Events != nil {
			r.Pattern = PathEvents
			s.serveEvents(w, r)
			return
		}
	}
	if s.fn.HTTP == nil {
		httpx.WriteProblem(w, r, httpx.NotFound(fmt.Sprintf("no route for %s", r.URL.Path)))
		return
	}
	if _, isMux := s.fn.HTTP.(*http.ServeMux); isMux {
		w = &muxProblemWriter{ResponseWriter: w, r: r}
	}
	s.fn.HTTP.ServeHTTP(w, r)
}

func (s *server) serveReady(w http.ResponseWriter, r *http.Request) {
	if s.drain.Draining() {
		httpx.WriteProblem(w, r, httpx.Unavailable("draining", nil))
		return
	}
	if s.fn.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.d.ReadyTimeout)
		defer cancel()
		if err := s.fn.Ready(ctx); err != nil {
			httpx.WriteProblem(w, r, httpx.Unavailable("not ready", err))
			return
		}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// validRequestID accepts ids made of token characters (and base64's +/=), at most 128 bytes,
// so a caller cannot inject anything odd into logs or response headers.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=':
		default:
			return false
		}
	}
	return true
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// statusRecorder remembers the status code and body size written.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	bytes int64
	wrote bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// muxProblemWriter turns an *http.ServeMux's own plain-text 404 and 405 replies (recognised
// by r.Pattern being empty: no route matched) into problem+json.
type muxProblemWriter struct {
	http.ResponseWriter
	r         *http.Request
	swallow   bool
	wroteHead bool
}

func (w *muxProblemWriter) WriteHeader(code int) {
	if !w.wroteHead && w.r.Pattern == "" && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		w.wroteHead, w.swallow = true, true
		p := httpx.NotFound(fmt.Sprintf("no route for %s", w.r.URL.Path))
		if code == http.StatusMethodNotAllowed {
			p = httpx.MethodNotAllowed(w.r.Method)
		}
		httpx.WriteProblem(w.ResponseWriter, w.r, p)
		return
	}
	w.wroteHead = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *muxProblemWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	w.wroteHead = true
	return w.ResponseWriter.Write(b)
}

func (w *muxProblemWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
