// Command connect-dev runs the whole marketplace on this machine (`make dev`). See package
// stack for what it starts and the environment variables it reads; it prints where everything
// is and stops everything on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/myscrollr/connect/infra/local/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// Libraries that log through the default logger (the OIDC provider announces every route it
	// registers) are kept to warnings and errors.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	root, err := stack.FindRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect-dev:", err)
		os.Exit(1)
	}
	cfg := stack.FromEnv(root)
	cfg.Logger = log
	cfg.ProcessOutput = os.Stderr
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect-dev:", err)
		os.Exit(1)
	}
	fmt.Printf(`
MyScrollr Connect is running.

  front door     %s
  database       %s
  kafka          %s
  stripe API     %s
  identity       %s  (issuer %s/oidc, API resource %s)

Try:
  curl '%s/v1/integrations'
  curl '%s/v1/integrations?q=crypto&sort=relevance'
  curl -X POST '%s/dev/token' -d '{"sub":"user-1","scope":"dashboard:read"}'   (a test access token)

Functions (each its own process on 127.0.0.1; /healthz, /readyz, /metrics on each):
%s
Development secrets (set them in the environment to choose your own; also in %s):
%s
Ctrl-C stops everything and removes the temporary files.
`, s.URL, s.DatabaseURL, strings.Join(s.Brokers, ","), s.StripeAPIBase,
		s.LogtoEndpoint, s.LogtoEndpoint, s.APIResource, s.URL, s.URL, s.LogtoEndpoint, listing(s.Functions, "  %-14s %s\n"),
		s.SecretsFile(), listing(s.Secrets(), "  %s=%s\n"))
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nstopping...")
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "connect-dev: stop:", err)
		os.Exit(1)
	}
}

// listing prints the entries of m in name order, each through format (name, value).
func listing(m map[string]string, format string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, format, n, m[n])
	}
	return b.String()
}
