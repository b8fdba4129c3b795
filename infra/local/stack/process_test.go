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

// A supervised process that dies is started again; once stopped it stays stopped.
func TestSupervisedProcessRestarts(t *testing.T) {
	p := newProcess("sleeper", "", "", "/bin/sh", []string{"-c", "exec sleep 60"}, nil, nil, slog.New(slog.DiscardHandler))
	p.supervise = true
	p.minBackoff = 10 * time.Millisecond
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	first := p.pid()
	cmd, _ := p.current()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for p.pid() == first {
		select {
		case <-deadline:
			t.Fatal("the killed process was not started again")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := p.stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	second := p.pid()
	// stop waits for the watchers: a restart after it returns is impossible, not just unlikely.
	p.watchers.Wait()
	if p.pid() != second {
		t.Fatal("a stopped process was started again")
	}
	if _, done := p.current(); !isClosed(done) {
		t.Fatal("the last process is still running after stop")
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
