package wasmhost

// Process isolation: a guest runs in a worker process, this binary re-executed, whose wazero
// runtime has no close-on-context-done (no check at every loop back edge: the measured cost in
// docs/decisions/0009). The host bounds a batch by killing the worker (SIGKILL) at its
// deadline; the next batch of that pool slot gets a new worker.
//
// Host and worker speak frames over the worker's stdin and stdout: a kind byte, a u32 little
// endian length, the payload.
//
//	host → worker  'I' init:  u32 n, n bytes of JSON (workerConfig), the module's bytes
//	               'B' batch: the batch in package abi's format (read straight into the guest)
//	worker → host  'R' ready: u32 ABI version
//	               'O' ok:    u32 n, n bytes of log, u64 log bytes dropped, the results buffer
//	               'E' the batch failed: the reason (a *BatchError's)
//	               'M' the module is refused: the reason (a *ModuleError's)
//
// After 'E' or 'M' the worker exits; the host never reuses it. A worker reads until its stdin
// ends (the host closed it or died) and then exits; on Linux it also dies with the host
// (PR_SET_PDEATHSIG). It starts with an empty environment (no DATABASE_URL or other secret of
// the function reaches a process that runs untrusted code) and no descriptors but 0, 1 and 2,
// and bounds its own address space (RLIMIT_AS, worker_linux.go) before it compiles anything.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/myscrollr/connect/wasmhost/abi"
)

// The argument and environment variable that make this binary a worker; only the host sets
// them, and only both together do.
const (
	workerArg = "-connect-wasmhost-worker-v1"
	workerEnv = "CONNECT_WASMHOST_WORKER"
)

// workerCapable is set by MaybeWorker: this binary can be re-executed as a worker.
var workerCapable atomic.Bool

// MaybeWorker makes this binary able to run guests in worker processes (process isolation,
// the default once it is called). Call it first thing in main, before anything else is
// started: when the process is a worker the host started, it serves the host and exits
// without returning; otherwise it returns at once. A test binary calls it in TestMain.
func MaybeWorker() {
	workerCapable.Store(true)
	if len(os.Args) != 2 || os.Args[1] != workerArg || os.Getenv(workerEnv) != "1" {
		return
	}
	os.Exit(serveWorker(os.Stdin, os.Stdout))
}

// workerConfig is what a worker needs of the host's Config.
type workerConfig struct {
	CacheDir       string
	MaxMemoryPages uint32
	MaxOutputBytes int
	MaxLogBytes    int
	GCEvery        int
	InitTimeout    time.Duration
}

const frameHeader = 5

func putHeader(b []byte, kind byte, n int) {
	b[0] = kind
	binary.LittleEndian.PutUint32(b[1:], uint32(n))
}

// serveWorker is the worker's main loop; it returns the exit code.
func serveWorker(r io.Reader, w io.Writer) int {
	ctx := context.Background()
	in := bufio.NewReaderSize(r, 64<<10)
	out := bufio.NewWriterSize(w, 64<<10)
	reply := func(kind byte, parts ...[]byte) bool {
		n := 0
		for _, p := range parts {
			n += len(p)
		}
		var h [frameHeader]byte
		putHeader(h[:], kind, n)
		_, _ = out.Write(h[:])
		for _, p := range parts {
			_, _ = out.Write(p)
		}
		return out.Flush() == nil
	}
	fatal := func(err error) int {
		var me *ModuleError
		var be *BatchError
		switch {
		case errors.As(err, &me):
			reply('M', []byte(me.Reason))
		case errors.As(err, &be):
			reply('E', []byte(be.Reason))
		default:
			reply('E', []byte(err.Error()))
		}
		return 1
	}

	var h [frameHeader]byte
	if _, err := io.ReadFull(in, h[:]); err != nil || h[0] != 'I' {
		return 2
	}
	init := make([]byte, binary.LittleEndian.Uint32(h[1:]))
	if _, err := io.ReadFull(in, init); err != nil || len(init) < 4 {
		return 2
	}
	n := binary.LittleEndian.Uint32(init)
	if uint64(n) > uint64(len(init)-4) {
		return 2
	}
	var wc workerConfig
	if err := json.Unmarshal(init[4:4+n], &wc); err != nil {
		return 2
	}
	wasm := init[4+n:]
	limitAddressSpace(uint64(wc.MaxMemoryPages) << 16)

	cache, err := wazero.NewCompilationCacheWithDir(wc.CacheDir)
	if err != nil {
		return fatal(fmt.Errorf("worker: compilation cache: %w", err))
	}
	rt, err := newRuntime(ctx, cache, wc.MaxMemoryPages, false)
	if err != nil {
		return fatal(fmt.Errorf("worker: %w", err))
	}
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return fatal(refuse("does not compile: %s", clip(err.Error(), 300)))
	}
	inst, err := newInproc(ctx, rt, cm, Config{
		MaxOutputBytes: wc.MaxOutputBytes,
		MaxLogBytes:    wc.MaxLogBytes,
		GCEvery:        wc.GCEvery,
		InitTimeout:    wc.InitTimeout, // the host kills us at it; here it only bounds the context
		BatchTimeout:   time.Duration(1<<63 - 1),
	})
	if err != nil {
		return fatal(err)
	}
	wasm, init = nil, nil
	if !reply('R', binary.LittleEndian.AppendUint32(nil, uint32(inst.version))) {
		return 0
	}
	for {
		if _, err := io.ReadFull(in, h[:]); err != nil {
			return 0 // the host closed our stdin
		}
		if h[0] != 'B' {
			return 2
		}
		size := int(binary.LittleEndian.Uint32(h[1:]))
		res, err := inst.call(ctx, size, func(buf []byte) error {
			_, err := io.ReadFull(in, buf)
			return err
		})
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) {
				return 0 // reading the batch failed: the host is gone
			}
			return fatal(err)
		}
		var meta [12]byte
		binary.LittleEndian.PutUint32(meta[:4], uint32(len(inst.log.buf)))
		binary.LittleEndian.PutUint64(meta[4:], uint64(inst.log.dropped))
		if !reply('O', meta[:4], inst.log.buf, meta[4:], res) {
			return 0
		}
	}
}

// worker is the host's side of one worker process: an instance of one module.
type worker struct {
	cfg     Config
	cmd     *exec.Cmd
	toW     *os.File // the worker's stdin
	fromW   *os.File // the worker's stdout
	stderr  *capBuf
	version int
	frame   []byte // reused for batches and replies
	waited  chan struct{}
	waitErr error
}

// startWorker starts a worker for wasm and waits (at most Config.InitTimeout) for it to
// instantiate the module and check its ABI version.
func (h *Host) startWorker(ctx context.Context, wasm []byte) (*worker, error) {
	cfg := h.cfg
	w := &worker{cfg: cfg, stderr: &capBuf{max: 4 << 10}, waited: make(chan struct{})}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("wasmhost: worker pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("wasmhost: worker pipe: %w", err)
	}
	w.cmd = exec.Command(h.exe, workerArg)
	w.cmd.Env = []string{workerEnv + "=1"}
	w.cmd.Stdin, w.cmd.Stdout, w.cmd.Stderr = inR, outW, w.stderr
	w.cmd.SysProcAttr = workerSysProcAttr()
	w.toW, w.fromW = inW, outR
	err = w.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("wasmhost: starting a worker (%s): %w", h.exe, err)
	}
	go func() { w.waitErr = w.cmd.Wait(); close(w.waited) }()

	js, _ := json.Marshal(workerConfig{
		CacheDir:       h.cacheDir,
		MaxMemoryPages: cfg.MaxMemoryPages,
		MaxOutputBytes: cfg.MaxOutputBytes,
		MaxLogBytes:    cfg.MaxLogBytes,
		GCEvery:        cfg.GCEvery,
		InitTimeout:    cfg.InitTimeout,
	})
	msg := make([]byte, frameHeader+4, frameHeader+4+len(js)+len(wasm))
	putHeader(msg, 'I', 4+len(js)+len(wasm))
	binary.LittleEndian.PutUint32(msg[frameHeader:], uint32(len(js)))
	msg = append(append(msg, js...), wasm...)
	kind, payload, err := w.exchange(ctx, msg, cfg.InitTimeout, "instantiating")
	if err == nil && (kind != 'R' || len(payload) != 4) {
		err = fmt.Errorf("wasmhost: worker answered %q to init", kind)
	}
	if err != nil {
		w.close(ctx)
		return nil, err
	}
	w.version = int(int32(binary.LittleEndian.Uint32(payload)))
	return w, nil
}

func (w *worker) abiVersion() int { return w.version }

// close kills the worker and reaps it.
func (w *worker) close(context.Context) {
	_ = w.cmd.Process.Kill()
	w.toW.Close()
	<-w.waited
	w.fromW.Close()
}

func (w *worker) batch(ctx context.Context, in []abi.Input) ([]byte, []byte, int64, error) {
	size := abi.BatchSize(in)
	if cap(w.frame) < frameHeader+size {
		w.frame = make([]byte, frameHeader+size)
	}
	msg := w.frame[:frameHeader+size]
	putHeader(msg, 'B', size)
	abi.EncodeBatch(msg[frameHeader:], in)
	kind, p, err := w.exchange(ctx, msg, w.cfg.BatchTimeout, "the batch")
	if err != nil {
		return nil, nil, 0, err
	}
	if kind != 'O' || len(p) < 12 || uint64(binary.LittleEndian.Uint32(p))+12 > uint64(len(p)) {
		return nil, nil, 0, fmt.Errorf("wasmhost: worker answered %q (%d bytes) to a batch", kind, len(p))
	}
	n := binary.LittleEndian.Uint32(p)
	log := p[4 : 4+n]
	dropped := int64(binary.LittleEndian.Uint64(p[4+n:]))
	return p[12+n:], log, dropped, nil
}

// exchange sends msg and reads one reply, within limit and ctx: past either the worker is
// killed. A worker's 'E' or 'M' reply is returned as a *BatchError or *ModuleError.
func (w *worker) exchange(ctx context.Context, msg []byte, limit time.Duration, what string) (byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	deadline := time.Now().Add(limit)
	stop := context.AfterFunc(ctx, func() { _ = w.cmd.Process.Kill() })
	defer stop()
	_ = w.toW.SetWriteDeadline(deadline)
	_ = w.fromW.SetReadDeadline(deadline)
	kind, p, err := w.roundTrip(msg)
	if err == nil {
		switch kind {
		case 'E':
			return 0, nil, &BatchError{Reason: string(p)}
		case 'M':
			return 0, nil, &ModuleError{Reason: string(p)}
		}
		return kind, p, nil
	}
	_ = w.cmd.Process.Kill()
	switch {
	case ctx.Err() != nil:
		return 0, nil, ctx.Err()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil, &BatchError{Reason: fmt.Sprintf("%s ran past the time limit of %s (its worker process was killed)", what, limit)}
	}
	<-w.waited
	reason := fmt.Sprintf("its worker process died (%v)", w.waitErr)
	if s := strings.TrimSpace(w.stderr.String()); s != "" {
		reason += "; its stderr begins: " + clip(s, 300)
	}
	return 0, nil, &BatchError{Reason: reason}
}

func (w *worker) roundTrip(msg []byte) (byte, []byte, error) {
	if _, err := w.toW.Write(msg); err != nil {
		return 0, nil, err
	}
	var h [frameHeader]byte
	if _, err := io.ReadFull(w.fromW, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(h[1:])
	if int64(n) > int64(w.cfg.MaxOutputBytes)+int64(w.cfg.MaxLogBytes)+64 {
		return 0, nil, fmt.Errorf("wasmhost: a worker's reply of %d bytes", n)
	}
	// The reply is copied out by the caller (abi.ParseResults' Data alias it, and Run hands
	// them on), so it gets its own buffer.
	p := make([]byte, n)
	if _, err := io.ReadFull(w.fromW, p); err != nil {
		return 0, nil, err
	}
	return h[0], p, nil
}

// capBuf keeps the first max bytes written to it (a worker's stderr: the Go runtime's last
// words when it dies).
type capBuf struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (c *capBuf) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capBuf) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}
