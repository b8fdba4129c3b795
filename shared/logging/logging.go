// Package logging builds the structured JSON loggers every function uses and carries a
// request-scoped *slog.Logger through a context.Context.
//
// Loggers are injected, never global: a function's main builds one with New, the runtime
// derives a per-request logger (request id, method, path) and stores it with With, and code
// deep in a handler retrieves it with From.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger writing to w at the given minimum level. Every record carries the
// attribute "function" with the function's name.
func New(w io.Writer, function string, level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(h).With(slog.String("function", function))
}

type ctxKey struct{}

// With returns a copy of ctx carrying l. A nil l leaves ctx unchanged.
func With(ctx context.Context, l *slog.Logger) context.Context {
	if l == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the logger stored in ctx by With, or slog.Default() when there is none.
// It never returns nil.
func From(ctx context.Context) *slog.Logger {
	if ctx != nil {
		if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok && l != nil {
			return l
		}
	}
	return slog.Default()
}

// ParseLevel parses a LOG_LEVEL value: "debug", "info", "warn" (or "warning") or "error",
// case-insensitive; the empty string means info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", s)
}
