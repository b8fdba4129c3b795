package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildFunctions compiles every named function into binDir, in one go build so packages
// shared by the functions are compiled once.
func buildFunctions(ctx context.Context, root, binDir string, names []string, log *slog.Logger) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	// The Knative build (shared/runtime/doc.go): no Lambda adapter.
	args := []string{"build", "-tags", "nolambda", "-o", binDir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./functions/"+n)
	}
	args = append(args, "github.com/stripe/stripe-mock")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stack: go build: %w\n%s", err, out)
	}
	log.Info("functions built", "count", len(names), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// process is one child process: a function or a helper server. A supervised process is
// started again when it exits on its own, as Knative restarts a crashed container: after 1 s,
// doubling up to 30 s while it keeps crashing, on the same port so every route to it stays.
type process struct {
	name      string
	url       string // base URL when it serves HTTP
	readyAt   string // full URL answering 200 when ready
	bin       string
	args, env []string
	output    *lineWriter
	log       *slog.Logger
	supervise bool
	// minBackoff is the first restart delay (tests shorten it).
	minBackoff time.Duration

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current command has exited
	err      error         // its exit error
	started  time.Time
	restarts int
	stopping bool
	stopCh   chan struct{}  // closed by stop: no more restarts
	watchers sync.WaitGroup // the goroutines waiting on a command (and restarting it)
}

const maxBackoff = 30 * time.Second

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startFunction(ctx context.Context, name, bin string, env []string, out io.Writer, log *slog.Logger) (*process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// Only what the caller chose: a function sees the settings its Knative Service declares,
	// not this process's environment.
	env = append(slices.Clone(env), "PORT="+strconv.Itoa(port), "LISTEN_HOST=127.0.0.1", "DRAIN_TIMEOUT=1s")
	p := newProcess(name, base, base+"/readyz", bin, nil, env, out, log)
	p.supervise = true
	return p, p.start()
}

func startProcess(name, base, readyURL, bin string, args, env []string, out io.Writer, log *slog.Logger) (*process, error) {
	p := newProcess(name, base, readyURL, bin, args, env, out, log)
	return p, p.start()
}

func newProcess(name, base, readyURL, bin string, args, env []string, out io.Writer, log *slog.Logger) *process {
	return &process{name: name, url: base, readyAt: readyURL, bin: bin, args: args, env: env,
		output: &lineWriter{prefix: name, out: out}, log: log, minBackoff: time.Second, stopCh: make(chan struct{})}
}

// start runs the command once and watches it.
func (p *process) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.output, p.output
	// Wait returns this long after the process exited even if a child of it still holds the
	// output pipe open.
	cmd.WaitDelay = 2 * time.Second
	// A killed parent must not leave children behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("stack: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err, p.started = cmd, done, nil, time.Now()
	p.mu.Unlock()
	p.log.Info("process started", "name", p.name, "pid", cmd.Process.Pid, "url", p.url)
	p.watchers.Add(1)
	go func() {
		defer p.watchers.Done()
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		stopping := p.stopping
		p.mu.Unlock()
		close(done)
		if p.supervise && !stopping {
			p.restartLater(err)
		}
	}()
	return nil
}

// restartLater starts the process again after the backoff, unless it is being stopped.
func (p *process) restartLater(exitErr error) {
	p.mu.Lock()
	if time.Since(p.started) > maxBackoff {
		p.restarts = 0 // it ran a good while: this is a new crash, not a crash loop
	}
	delay := min(p.minBackoff<<min(p.restarts, 10), maxBackoff)
	p.restarts++
	p.mu.Unlock()
	p.log.Warn("process exited; restarting", "name", p.name, "err", exitErr, "in", delay,
		"last_output", p.output.tail())
	select {
	case <-p.stopCh:
		return
	case <-time.After(delay):
	}
	p.mu.Lock()
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		return
	}
	if err := p.start(); err != nil {
		p.log.Error("process restart failed", "name", p.name, "err", err)
	}
}

// current is the running command (or the last one) and its done channel.
func (p *process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// pid is the process id of the current command.
func (p *process) pid() int {
	cmd, _ := p.current()
	return cmd.Process.Pid
}

func (p *process) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, done := p.current()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.readyAt, nil)
		req.Header.Set("Authorization", "Bearer sk_test_123") // stripe-mock wants a key
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			p.mu.Lock()
			exitErr := p.err
			p.mu.Unlock()
			return fmt.Errorf("stack: %s exited before it was ready: %v; its last output:\n%s", p.name, exitErr, p.output.tail())
		case <-ctx.Done():
			return fmt.Errorf("stack: %s not ready at %s: %w", p.name, p.readyAt, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends supervision, sends SIGTERM, waits for the drain, then kills.
func (p *process) stop(timeout time.Duration) error {
	p.mu.Lock()
	if !p.stopping {
		p.stopping = true
		close(p.stopCh)
	}
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	// When stop returns, no watcher is left that could start the process again.
	defer p.watchers.Wait()
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("stack: %s did not stop within %s; killed", p.name, timeout)
	}
}

// lineWriter copies a child's output (JSON lines from the function runtime) line by line to out
// (if set), each line prefixed with the process name, and keeps the last lines so a failure to
// start can say why.
type lineWriter struct {
	prefix string
	out    io.Writer

	mu   sync.Mutex
	buf  []byte
	last []string
}

const keepLines = 20

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 { // a runaway line is cut, not buffered forever
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(b), nil
}

func (w *lineWriter) emit(line string) {
	if w.out != nil {
		fmt.Fprintf(w.out, "%-14s | %s\n", w.prefix, line)
	}
	if len(w.last) == keepLines {
		w.last = append(w.last[:0], w.last[1:]...)
	}
	w.last = append(w.last, line)
}

func (w *lineWriter) tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.last, "\n")
}
