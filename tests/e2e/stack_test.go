// Package e2e runs the whole marketplace through the local runtime (package stack), the way
// `make dev` runs it, and checks it from the outside.
package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/infra/local/stack"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		t.Fatalf("repository root not found at %s", dir)
	}
	return dir
}

// testConfig is a stack on free ports (nothing on the make dev defaults), logging to stderr
// only with -v.
func testConfig(t *testing.T, functions ...string) stack.Config {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and starts the whole marketplace")
	}
	// Each test runs its own stack on free ports and most of their time is waiting (a poll
	// tick, a retry, a health probe), so they run side by side (at most -parallel at once).
	t.Parallel()
	cfg := stack.Config{
		Root:           repoRoot(t),
		Addr:           "127.0.0.1:0",
		KafkaAddr:      "127.0.0.1:0",
		StripeMockAddr: "127.0.0.1:0",
		IdentityAddr:   "127.0.0.1:0",
		Functions:      functions,
		WorkDir:        t.TempDir(),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cfg.ProcessOutput = os.Stderr
	}
	return cfg
}

// startStack runs the marketplace and stops it when the test ends.
func startStack(t *testing.T, cfg stack.Config) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	return s
}

// make dev's catalog: the demo integrations are listed, served by the catalog function from a
// real database through the front door, and unknown routes get a problem+json 404.
func TestCatalogThroughFrontDoor(t *testing.T) {
	cfg := testConfig(t, "catalog")
	cfg.Demo = true
	s := startStack(t, cfg)

	get := func(path string) (int, []byte, http.Header) {
		t.Helper()
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body, resp.Header
	}
	var page struct {
		Items []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"items"`
	}
	code, body, _ := get("/v1/integrations")
	if code != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != 4 {
		t.Fatalf("GET /v1/integrations = %d %s; want the 4 demo listings", code, body)
	}
	code, body, _ = get("/v1/integrations?q=crypto")
	if code != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != 1 || page.Items[0].Name != "crypto-ticker" {
		t.Fatalf("search = %d %s", code, body)
	}
	code, _, h := get("/v1/nothing-here")
	if code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("unknown route = %d %s", code, h.Get("Content-Type"))
	}
}

// Stop leaves nothing behind: every child process is gone and the work directory removed.
func TestStopCleansUp(t *testing.T) {
	cfg := testConfig(t, "catalog")
	cfg.WorkDir = "" // Stop must remove the directory it made
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	pids := s.PIDs()
	dir := s.WorkDir()
	if len(pids) < 2 {
		t.Fatalf("pids = %v; want the catalog, stripe-mock and postgres", pids)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			if st, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); !strings.Contains(string(st), ") Z ") {
				t.Errorf("process %d still running after Stop", pid)
			}
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("work dir %s still exists after Stop (err=%v)", dir, err)
	}
}
