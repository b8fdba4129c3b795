package runtime_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/myscrollr/connect/shared/runtime"
)

const helperEnv = "RUNTIME_TEST_HELPER"

// helperMain is a tiny function binary (the test binary re-executed): GET /slow blocks until
// GET /release arrives, announcing itself on stdout through the runtime's logger.
func helperMain() {
	runtime.Main("helper", func(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
		release := make(chan struct{})
		mux := http.NewServeMux()
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			d.Logger.Info("slow started")
			<-release
			_, _ = io.WriteString(w, "done")
		})
		mux.HandleFunc("GET /release", func(w http.ResponseWriter, r *http.Request) { close(release) })
		return runtime.Function{Name: "helper", HTTP: mux, Close: func() error {
			d.Logger.Info("closed")
			return nil
		}}, nil
	})
}

// TestSIGTERMDrain runs a real function process, sends it SIGTERM while a request is in
// flight, and checks Knative drain semantics: readiness fails at once, the in-flight request
// completes with 200, Close runs, the process exits 0.
func TestSIGTERMDrain(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "PORT=0", "LISTEN_HOST=127.0.0.1", "DRAIN_TIMEOUT=50ms", "LOG_LEVEL=debug")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	lines := make(chan map[string]any, 64)
	var all strings.Builder
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				lines <- rec
			}
		}
	}()
	waitFor := func(msg string) map[string]any {
		t.Helper()
		for rec := range lines {
			if rec["msg"] == msg {
				return rec
			}
		}
		t.Fatalf("process output ended before %q", msg)
		return nil
	}

	addr, _ := waitFor("serving")["addr"].(string)
	base := "http://" + addr
	if r := get(t, base+"/readyz"); r.status != 200 {
		t.Fatalf("/readyz before SIGTERM: %d", r.status)
	}

	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{resp.StatusCode, string(b), err}
	}()
	waitFor("slow started")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor("draining")
	// The slow request is in flight, so the listener is still open and readiness fails.
	r := get(t, base+"/readyz")
	if r.status != 503 {
		t.Fatalf("/readyz while draining: %d", r.status)
	}
	r.problem(t)
	if r := get(t, base+"/healthz"); r.status != 200 {
		t.Fatalf("/healthz while draining: %d", r.status)
	}
	if r := get(t, base+"/release"); r.status != 200 {
		t.Fatalf("/release: %d", r.status)
	}
	res := <-slow
	if res.err != nil || res.status != 200 || res.body != "done" {
		t.Fatalf("in-flight request: %+v", res)
	}
	waitFor("closed")
	for range lines { // drain the pipe so Wait can finish
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("process exit: %v\n%s", err, all.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestServeDrainInProcess checks the same semantics through Serve and a cancelled context.
func TestServeDrainInProcess(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	var closed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	b := setup(t, runtime.Function{Name: "drain", HTTP: mux, Close: func() error { closed.Store(true); return nil }},
		runtime.Deps{DrainQuiet: 1})

	slow := make(chan response, 1)
	go func() {
		resp, err := http.Get(b.url + "/slow")
		if err != nil {
			slow <- response{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		slow <- response{status: resp.StatusCode, body: body}
	}()
	<-started
	b.cancel()
	// Readiness flips once Serve notices the cancellation; the listener stays open because a
	// request is in flight.
	for {
		r := get(t, b.url+"/readyz")
		if r.status == 503 {
			break
		}
		if r.status != 200 {
			t.Fatalf("/readyz: %d", r.status)
		}
	}
	close(release)
	if r := <-slow; r.status != 200 || string(r.body) != "done" {
		t.Fatalf("in-flight request: %d %s", r.status, r.body)
	}
	err := <-b.done
	b.done <- err // for the cleanup in setup
	if err != nil || !closed.Load() {
		t.Fatalf("Serve returned %v, closed=%v", err, closed.Load())
	}
}

func TestServeCloseError(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ln := newLoopbackListener(t)
	err := runtime.Serve(ctx, ln, runtime.Function{Name: "x", Close: func() error { return errors.New("pool stuck") }}, runtime.Deps{Logger: discard()})
	if err == nil || !strings.Contains(err.Error(), "pool stuck") {
		t.Fatalf("want the Close error, got %v", err)
	}
	err = runtime.Serve(context.Background(), newLoopbackListener(t), runtime.Function{}, runtime.Deps{Logger: discard()})
	if err == nil || !strings.Contains(err.Error(), "Name") {
		t.Fatalf("want an error naming Function.Name, got %v", err)
	}
}
