package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/myscrollr/connect/shared/logging"
)

func TestNewWritesJSONWithFunction(t *testing.T) {
	var buf bytes.Buffer
	l := logging.New(&buf, "catalog", slog.LevelInfo)
	l.Debug("hidden")
	l.Info("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", buf.String(), err)
	}
	if rec["function"] != "catalog" || rec["msg"] != "hello" || rec["k"] != float64(1) {
		t.Fatalf("unexpected record %v", rec)
	}
}

func TestContextRoundTrip(t *testing.T) {
	if logging.From(context.Background()) == nil {
		t.Fatal("From must never return nil")
	}
	var buf bytes.Buffer
	l := logging.New(&buf, "f", slog.LevelInfo)
	ctx := logging.With(context.Background(), l)
	if logging.From(ctx) != l {
		t.Fatal("From did not return the stored logger")
	}
	if logging.With(ctx, nil) != ctx {
		t.Fatal("With(nil) must leave ctx unchanged")
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "DEBUG": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError} {
		got, err := logging.ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) must fail")
	}
}

func ExampleFrom() {
	ctx := logging.With(context.Background(), slog.New(slog.DiscardHandler))
	logging.From(ctx).Info("goes nowhere")
	// Output:
}
