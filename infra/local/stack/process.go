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
	args := []string{"build", "-o", binDir + string(filepath.Separator)}
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

// process is one child process: a function or a helper server.
type process struct {
	name    string
	url     string // base URL when it serves HTTP
	readyAt string // full URL answering 200 when ready
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	output  *lineWriter
}

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
	env = append(append(os.Environ(), env...), "PORT="+strconv.Itoa(port), "DRAIN_TIMEOUT=1s")
	return startProcess(name, base, base+"/readyz", bin, nil, env, out, log)
}

func startProcess(name, base, readyURL, bin string, args, env []string, out io.Writer, log *slog.Logger) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	w := &lineWriter{prefix: name, out: out}
	cmd.Stdout, cmd.Stderr = w, w
	// A killed parent must not leave children behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	p := &process{name: name, url: base, readyAt: readyURL, cmd: cmd, done: make(chan struct{}), output: w}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	log.Info("process started", "name", name, "pid", cmd.Process.Pid, "url", base)
	return p, nil
}

func (p *process) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
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
		case <-p.done:
			return fmt.Errorf("stack: %s exited before it was ready: %v; its last output:\n%s", p.name, p.err, p.output.tail())
		case <-ctx.Done():
			return fmt.Errorf("stack: %s not ready at %s: %w", p.name, p.readyAt, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, waits for the drain, then kills.
func (p *process) stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
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
