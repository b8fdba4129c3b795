package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"knative.dev/pkg/signals"

	"github.com/myscrollr/connect/shared/logging"
)

// Config is what Main reads from the environment.
type Config struct {
	LogLevel        slog.Level    // LOG_LEVEL: debug, info (default), warn, error
	Port            int           // PORT: default 8080; 0 picks a free port (tests)
	Host            string        // LISTEN_HOST: default all interfaces; tests use 127.0.0.1
	DrainQuiet      time.Duration // DRAIN_TIMEOUT: Go duration, default 30s
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT: Go duration, default 30s
	MaxEventBytes   int64         // MAX_EVENT_BYTES: default 1 MiB
	Lambda          bool          // AWS_LAMBDA_RUNTIME_API set: serve through aws-lambda-go
	// Senders: EVENTS_OIDC_ISSUER, EVENTS_OIDC_AUDIENCE, EVENTS_OIDC_JWKS_URL,
	// EVENTS_OIDC_SUBJECTS, EVENTS_OIDC_ALGORITHMS (see SenderConfig). Required by a function
	// that handles events, except on Lambda, where events arrive through the Kafka event source
	// mapping (IAM) and POST /events without them refuses everything.
	Senders SenderConfig
}

// ConfigFromEnv reads Config through getenv; errors name the variable and the reason.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Port: 8080, DrainQuiet: 30 * time.Second, ShutdownTimeout: 30 * time.Second, MaxEventBytes: DefaultMaxEventBytes}
	var err error
	if c.LogLevel, err = logging.ParseLevel(getenv("LOG_LEVEL")); err != nil {
		return c, err
	}
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return c, fmt.Errorf("PORT %q: want a port number 0-65535", v)
		}
		c.Port = p
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"DRAIN_TIMEOUT", &c.DrainQuiet}, {"SHUTDOWN_TIMEOUT", &c.ShutdownTimeout}} {
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t < 0 {
				return c, fmt.Errorf("%s %q: want a non-negative Go duration such as 30s", d.name, v)
			}
			*d.dst = t
		}
	}
	if v := getenv("MAX_EVENT_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return c, fmt.Errorf("MAX_EVENT_BYTES %q: want a positive number of bytes", v)
		}
		c.MaxEventBytes = n
	}
	c.Senders = SenderConfig{
		Issuer:     getenv("EVENTS_OIDC_ISSUER"),
		Audience:   getenv("EVENTS_OIDC_AUDIENCE"),
		JWKSURL:    getenv("EVENTS_OIDC_JWKS_URL"),
		Subjects:   splitList(getenv("EVENTS_OIDC_SUBJECTS")),
		Algorithms: splitList(getenv("EVENTS_OIDC_ALGORITHMS")),
	}
	if c.Senders.Enabled() {
		if err := c.Senders.validate(); err != nil {
			return c, err
		}
	}
	c.Host = getenv("LISTEN_HOST")
	c.Lambda = getenv("AWS_LAMBDA_RUNTIME_API") != ""
	return c, nil
}

// Main is the whole body of a function's main(). It builds the logger (LOG_LEVEL) and metrics,
// reads PORT (default 8080) and LISTEN_HOST, calls setup, serves until SIGTERM/SIGINT, drains, calls Close and
// exits 0; it exits 1 with a logged error on failure. If AWS_LAMBDA_RUNTIME_API is set it
// serves through aws-lambda-go instead (see LambdaHandler).
func Main(name string, setup func(ctx context.Context, d Deps) (Function, error)) {
	os.Exit(run(signals.NewContext(), name, os.Getenv, os.Stdout, setup))
}

func run(ctx context.Context, name string, getenv func(string) string, out io.Writer,
	setup func(ctx context.Context, d Deps) (Function, error)) int {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		logging.New(out, name, slog.LevelInfo).Error("invalid configuration", slog.Any("error", err))
		return 1
	}
	log := logging.New(out, name, cfg.LogLevel)
	d := Deps{
		Logger:          log,
		Registry:        NewRegistry(),
		DrainQuiet:      cfg.DrainQuiet,
		ShutdownTimeout: cfg.ShutdownTimeout,
		MaxEventBytes:   cfg.MaxEventBytes,
	}
	fn, err := setup(ctx, d)
	if err != nil {
		log.Error("setup failed", slog.Any("error", err))
		return 1
	}
	if fn.Name == "" {
		fn.Name = name
	}
	if fn.Events != nil {
		switch {
		case cfg.Senders.Enabled():
			if d.Senders, err = NewSenderVerifier(ctx, cfg.Senders, log, nil); err != nil {
				log.Error("invalid configuration", slog.Any("error", err))
				closeFn(fn)
				return 1
			}
		case !cfg.Lambda:
			log.Error("invalid configuration", slog.Any("error", errors.New(
				"this function receives events: set EVENTS_OIDC_ISSUER and EVENTS_OIDC_AUDIENCE so POST /events can verify the sender")))
			closeFn(fn)
			return 1
		}
	}
	if cfg.Lambda {
		if err := startLambda(ctx, fn, d); err != nil { // returns only on error
			log.Error("cannot serve on AWS Lambda", slog.Any("error", err))
			closeFn(fn)
			return 1
		}
		return 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		log.Error("listen failed", slog.Any("error", err))
		closeFn(fn)
		return 1
	}
	if err := Serve(ctx, ln, fn, d); err != nil {
		log.Error("serve failed", slog.Any("error", err))
		return 1
	}
	return 0
}

func closeFn(fn Function) {
	if fn.Close != nil {
		_ = fn.Close()
	}
}

// splitList splits a comma-separated setting, dropping empty items and spaces.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
