package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Function is what a function binary serves.
type Function struct {
	Name   string                          // "catalog", "install", ...
	HTTP   http.Handler                    // optional: serves every path except the reserved ones
	Events EventHandler                    // optional: CloudEvents (binary+structured) at POST /events
	Ready  func(ctx context.Context) error // optional readiness check (db ping); nil = always ready
	Close  func() error                    // optional: called after drain (close pools)
}

// EventHandler handles one CloudEvent. Return nil when done, events.Permanent(err) when the event can
// never succeed (dead letter), any other error to have it redelivered.
type EventHandler func(ctx context.Context, e cloudevents.Event) error

// Deps are the dependencies the runtime hands to a function's setup and uses itself.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // functions register their own metrics here

	// DrainQuiet is how long to keep serving after the serve context ends, measured from the
	// last non-probe request arrival or completion, and never while one is in flight (Knative
	// Drainer semantics, see drain.go). Zero means no quiet period. Main sets it from
	// DRAIN_TIMEOUT (default 30s).
	DrainQuiet time.Duration
	// ShutdownTimeout bounds how long in-flight requests may hold up the drain, and again the
	// final shutdown. Zero means 30s.
	ShutdownTimeout time.Duration
	// MaxEventBytes bounds a CloudEvent request body. Zero means DefaultMaxEventBytes.
	MaxEventBytes int64
	// ReadyTimeout bounds one Function.Ready call. Zero means 5s.
	ReadyTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout (header and body) and IdleTimeout bound slow clients of
	// Serve's server. Zero means DefaultReadHeaderTimeout (10s), DefaultReadTimeout (15s) and
	// DefaultIdleTimeout (90s); timeouts.go says why, and why there is no write timeout.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// Senders verifies the sender token of every event at POST /events (Knative Eventing
	// sender identity, see SenderConfig). Without it, and without InsecureEvents, every event
	// is refused with 401: events are never accepted from an unproven sender by default.
	Senders SenderVerifier
	// InsecureEvents accepts events at POST /events without a sender token. Only for tests of
	// a function's event handling; Main never sets it.
	InsecureEvents bool
}

// DefaultMaxEventBytes is the default CloudEvent body limit (1 MiB).
const DefaultMaxEventBytes = 1 << 20

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = NewRegistry()
	}
	if d.ShutdownTimeout <= 0 {
		d.ShutdownTimeout = 30 * time.Second
	}
	if d.MaxEventBytes <= 0 {
		d.MaxEventBytes = DefaultMaxEventBytes
	}
	if d.ReadyTimeout <= 0 {
		d.ReadyTimeout = 5 * time.Second
	}
	return d
}

// NewRegistry returns a Prometheus registry with the Go and process collectors registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewHandler returns the handler stack Serve runs (reserved endpoints, middleware, fn.HTTP,
// POST /events), without a listener and without draining, for in-process use such as tests
// and fuzzing.
func NewHandler(fn Function, d Deps) (http.Handler, error) {
	return newServer(fn, d.withDefaults())
}

// Serve serves fn on ln until ctx is done, then drains (readiness fails at once; a quiet
// period of d.DrainQuiet after the last request; in-flight requests finish within
// d.ShutdownTimeout), calls fn.Close and returns. It returns nil after a clean drain; an error
// if serving failed or shutdown timed out or Close failed. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, fn Function, d Deps) error {
	d = d.withDefaults()
	s, err := newServer(fn, d)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: orDefault(d.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(d.ReadTimeout, DefaultReadTimeout), // header and body
		IdleTimeout:       orDefault(d.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.Logger.Handler(), slog.LevelWarn),
		// No WriteTimeout: it would bound the handler's time too (see timeouts.go).
		// In-flight requests must outlive ctx: they finish during the drain.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d.Logger.Info("serving", slog.String("addr", ln.Addr().String()))

	var serveErr error
	select {
	case serveErr = <-errc:
		serveErr = fmt.Errorf("runtime: serve: %w", serveErr)
	case <-ctx.Done():
		s.drain.Start()
		d.Logger.Info("draining", slog.Duration("quiet_period", d.DrainQuiet))
		s.drain.Drain(d.DrainQuiet, d.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.ShutdownTimeout)
		if err := srv.Shutdown(sctx); err != nil {
			serveErr = fmt.Errorf("runtime: shutdown: %w", err)
			_ = srv.Close()
		}
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
			serveErr = fmt.Errorf("runtime: serve: %w", err)
		}
	}
	if fn.Close != nil {
		if err := fn.Close(); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("runtime: close %s: %w", fn.Name, err))
		}
	}
	d.Logger.Info("stopped", slog.Any("error", serveErr))
	return serveErr
}
