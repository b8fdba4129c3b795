package stack

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A function that dies at start-up is reported with its last output, and its output lines
// reach ProcessOutput with the function's name.
func TestProcessFailureCarriesItsOutput(t *testing.T) {
	var out bytes.Buffer
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p, err := startProcess("broken", base, base+"/readyz", "/bin/sh",
		[]string{"-c", "echo 'DATABASE_URL is required' >&2; exit 3"}, nil, &out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(context.Background(), 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is required") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("waitReady = %v; want the exit status and the last output", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "broken") || !strings.Contains(got, "| DATABASE_URL is required") {
		t.Fatalf("process output = %q", got)
	}
}
