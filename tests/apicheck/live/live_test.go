package live

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/tests/apicheck"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func newChecker(t *testing.T) *apicheck.Checker {
	t.Helper()
	spec, err := schemas.OpenAPI.ReadFile("openapi/connect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := apicheck.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startFunction builds functions/<name> and runs it on 127.0.0.1 with env added to this
// process's environment, and returns its base URL once /readyz answers 200. The process is
// interrupted (and drained) when the test ends.
func startFunction(t *testing.T, name string, env ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs functions/" + name + "; not in -short")
	}
	bin := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-tags", "nolambda", "-o", bin, "github.com/myscrollr/connect/functions/"+name)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build functions/%s: %v\n%s", name, err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LISTEN_HOST=127.0.0.1", "LOG_LEVEL=warn",
		"DRAIN_TIMEOUT=0s", "SHUTDOWN_TIMEOUT=5s")
	cmd.Env = append(cmd.Env, env...)
	logs := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, logs.String())
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// Waiting on an external process: poll readiness with a deadline.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, err, logs.String())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not ready within 30s (last: %v)\n%s", name, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer collects a process's log while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
