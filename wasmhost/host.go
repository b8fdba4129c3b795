package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/myscrollr/connect/wasmhost/abi"
)

// Host runs transforms: one wazero runtime (compiled code cached on disk), the modules it has
// compiled (by sha256, least recently used dropped past Config.MaxModules) and, per module, a
// pool of instances. It is safe for concurrent use.
type Host struct {
	cfg      Config
	rt       wazero.Runtime
	cache    wazero.CompilationCache
	tempDir  string // the cache directory we created, removed by Close
	cacheDir string // the compilation cache's directory, shared with the workers
	exe      string // this binary, re-executed as a worker (process isolation)

	mu      sync.Mutex
	modules map[string]*Module
	tick    uint64
	closed  bool
}

// New starts a host.
func New(ctx context.Context, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("wasmhost: %w", err)
	}
	h := &Host{cfg: cfg, modules: map[string]*Module{}}
	dir := cfg.CacheDir
	if dir == "" {
		d, err := os.MkdirTemp("", "wasmhost-cache-")
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache: %w", err)
		}
		dir, h.tempDir = d, d
	}
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		h.removeTemp()
		return nil, fmt.Errorf("wasmhost: compilation cache in %s (WASM_CACHE_DIR): %w", dir, err)
	}
	h.cache = cache
	h.cacheDir = dir
	if cfg.Isolation == IsolationProcess {
		// This runtime only compiles and validates: guests run in workers, whose runtimes
		// have close-on-done off. The setting is part of wazero's cache key, so compiling
		// with the workers' setting here puts the code they load in the shared cache.
		cfg.uninterruptible = true
		if h.exe, err = os.Executable(); err != nil {
			h.removeTemp()
			return nil, fmt.Errorf("wasmhost: process isolation: finding this binary: %w", err)
		}
	}
	h.rt, err = newRuntime(ctx, cache, cfg.MaxMemoryPages, !cfg.uninterruptible)
	if err != nil {
		h.removeTemp()
		return nil, fmt.Errorf("wasmhost: %w", err)
	}
	return h, nil
}

// newRuntime is a wazero runtime with our WASI and the memory limit; closeOnDone is the
// in-process time limit (off in workers, which are killed instead).
func newRuntime(ctx context.Context, cache wazero.CompilationCache, maxPages uint32, closeOnDone bool) (wazero.Runtime, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(maxPages).
		WithCloseOnContextDone(closeOnDone).
		WithCoreFeatures(api.CoreFeaturesV2))
	if err := instantiateWASI(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	return rt, nil
}

func (h *Host) removeTemp() {
	if h.tempDir != "" {
		_ = os.RemoveAll(h.tempDir)
	}
}

// Close closes every instance and module and the runtime.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	mods := h.modules
	h.modules = map[string]*Module{}
	h.mu.Unlock()
	for _, m := range mods {
		m.drop(ctx)
	}
	err := h.rt.Close(ctx)
	err = errors.Join(err, h.cache.Close(ctx))
	h.removeTemp()
	return err
}

// Info describes a validated module.
type Info struct {
	SHA256     string // hex
	Size       int
	ABIVersion int
	HasGC      bool
}

// Sum is the hex sha256 of wasm, the key modules are cached and stored by.
func Sum(wasm []byte) string {
	s := sha256.Sum256(wasm)
	return hex.EncodeToString(s[:])
}

// Load validates wasm (size, format, imports, exports), compiles it (or finds it compiled),
// instantiates it once (its _initialize runs under Config.InitTimeout) and checks its ABI
// version. A module that fails any of these is a *ModuleError, refused before any record
// reaches it. Loading the same bytes again returns the same Module.
func (h *Host) Load(ctx context.Context, wasm []byte) (*Module, error) {
	if err := h.checkBytes(wasm); err != nil {
		return nil, err
	}
	sum := Sum(wasm)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("wasmhost: host closed")
	}
	if m, ok := h.modules[sum]; ok {
		h.tick++
		m.used = h.tick
		h.mu.Unlock()
		return m, nil
	}
	h.mu.Unlock()

	cm, err := h.rt.CompileModule(ctx, wasm)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, refuse("does not compile: %s", clip(err.Error(), 300))
	}
	if err := checkCompiled(cm); err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	_, hasGC := cm.ExportedFunctions()[ExportGC]
	m := &Module{
		host:     h,
		compiled: cm,
		wasm:     wasm,
		info:     Info{SHA256: sum, Size: len(wasm), HasGC: hasGC},
		idle:     make(chan instance, h.cfg.PoolSize),
		slots:    make(chan struct{}, h.cfg.PoolSize),
	}
	inst, err := m.instantiate(ctx)
	if err != nil {
		_ = cm.Close(ctx)
		var me *ModuleError
		if errors.As(err, &me) || ctx.Err() != nil {
			return nil, err
		}
		return nil, refuse("%s", clip(err.Error(), 300))
	}
	m.info.ABIVersion = inst.abiVersion()
	m.idle <- inst

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		m.drop(ctx)
		return nil, errors.New("wasmhost: host closed")
	}
	if prev, ok := h.modules[sum]; ok { // loaded concurrently: keep the first
		m.drop(ctx)
		return prev, nil
	}
	h.tick++
	m.used = h.tick
	h.modules[sum] = m
	for len(h.modules) > h.cfg.MaxModules {
		var oldest *Module
		for _, x := range h.modules {
			if oldest == nil || x.used < oldest.used {
				oldest = x
			}
		}
		delete(h.modules, oldest.info.SHA256)
		oldest.drop(ctx)
	}
	return m, nil
}

// Get returns the module with the given sha256 if it is loaded, or nil: a caller that stores
// modules loads the bytes only when Get has none.
func (h *Host) Get(sha256 string) *Module {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.modules[sha256]
	if m != nil {
		h.tick++
		m.used = h.tick
	}
	return m
}

// Module is a compiled transform with its pool of instances.
type Module struct {
	host     *Host
	compiled wazero.CompiledModule
	wasm     []byte // handed to each new worker (process isolation)
	info     Info
	used     uint64 // h.tick at the last Load, under h.mu

	idle  chan instance // instances ready for a batch
	slots chan struct{} // one per instance running a batch

	mu      sync.Mutex
	dropped bool

	instances atomic.Int64 // instantiated so far (tests check reuse)
	acquired  func()       // test hook: called once a batch holds an instance
}

// Info describes the module.
func (m *Module) Info() Info { return m.info }

// drop closes the idle instances and the compiled code; instances running a batch finish it
// and are closed when released.
func (m *Module) drop(ctx context.Context) {
	m.mu.Lock()
	m.dropped = true
	m.mu.Unlock()
	for {
		select {
		case inst := <-m.idle:
			inst.close(ctx)
		default:
			_ = m.compiled.Close(ctx)
			return
		}
	}
}

// instance is one running copy of a module, with its own memory: in this process (inproc) or
// in a worker process (worker). It runs one batch at a time.
type instance interface {
	// batch runs one batch and returns the results buffer (a copy, not yet parsed) and the
	// guest's log. Any error leaves the instance unusable.
	batch(ctx context.Context, in []abi.Input) (out []byte, log []byte, logDropped int64, err error)
	abiVersion() int
	close(ctx context.Context)
}

// inproc is an instance in this process's runtime.
type inproc struct {
	mod                  api.Module
	mem                  api.Memory
	alloc, transform, gc api.Function
	version              int
	batches              int
	log                  logSink
	cfg                  Config
}

func (m *Module) instantiate(ctx context.Context) (instance, error) {
	var inst instance
	var err error
	if m.host.cfg.Isolation == IsolationProcess {
		inst, err = m.host.startWorker(ctx, m.wasm)
	} else {
		inst, err = newInproc(ctx, m.host.rt, m.compiled, m.host.cfg)
	}
	if err != nil {
		return nil, err
	}
	m.instances.Add(1)
	return inst, nil
}

// newInproc instantiates compiled in rt (its _initialize under cfg.InitTimeout) and checks
// its ABI version. The worker process uses it too.
func newInproc(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule, cfg Config) (*inproc, error) {
	inst := &inproc{log: logSink{max: cfg.MaxLogBytes}, cfg: cfg}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, logKey{}, &inst.log), cfg.InitTimeout)
	defer cancel()
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(ExportInitialize))
	if err != nil {
		return nil, callError(ctx, "instantiating", err, &inst.log, cfg.InitTimeout)
	}
	inst.mod = mod
	inst.mem = mod.ExportedMemory(ExportMemory)
	inst.alloc = mod.ExportedFunction(ExportAlloc)
	inst.transform = mod.ExportedFunction(ExportTransform)
	inst.gc = mod.ExportedFunction(ExportGC)
	res, err := mod.ExportedFunction(ExportABIVersion).Call(ctx)
	if err != nil {
		_ = mod.Close(ctx)
		return nil, callError(ctx, ExportABIVersion, err, &inst.log, cfg.InitTimeout)
	}
	inst.version = int(int32(res[0]))
	if inst.version != abi.Version {
		_ = mod.Close(ctx)
		return nil, refuse("%s returned %d; this host speaks ABI version %d", ExportABIVersion, inst.version, abi.Version)
	}
	inst.log.reset()
	return inst, nil
}

func (inst *inproc) abiVersion() int { return inst.version }

func (inst *inproc) close(ctx context.Context) { _ = inst.mod.Close(context.WithoutCancel(ctx)) }

func (inst *inproc) batch(ctx context.Context, in []abi.Input) ([]byte, []byte, int64, error) {
	size := abi.BatchSize(in)
	out, err := inst.call(ctx, size, func(buf []byte) error { abi.EncodeBatch(buf, in); return nil })
	return out, inst.log.buf, inst.log.dropped, err
}

// call runs one batch of size bytes, which fill writes into the guest's buffer, under
// cfg.BatchTimeout (effective only with close-on-done), and returns a copy of the results
// buffer; connect_gc is called every cfg.GCEvery batches.
func (inst *inproc) call(ctx context.Context, size int, fill func([]byte) error) ([]byte, error) {
	cfg := inst.cfg
	inst.log.reset()
	cctx, cancel := context.WithTimeout(context.WithValue(ctx, logKey{}, &inst.log), cfg.BatchTimeout)
	defer cancel()
	fail := func(what string, err error) ([]byte, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, callError(cctx, what, err, &inst.log, cfg.BatchTimeout)
	}
	res, err := inst.alloc.Call(cctx, uint64(size))
	if err != nil {
		return fail(ExportAlloc, err)
	}
	ptr := uint32(res[0])
	buf, ok := inst.mem.Read(ptr, uint32(size))
	if !ok || ptr == 0 {
		return nil, &BatchError{Reason: fmt.Sprintf("%s(%d) returned %d, not a buffer inside its memory", ExportAlloc, size, ptr)}
	}
	if err := fill(buf); err != nil {
		return nil, err
	}
	res, err = inst.transform.Call(cctx, uint64(ptr), uint64(size))
	if err != nil {
		return fail(ExportTransform, err)
	}
	outPtr, outLen := uint32(res[0]>>32), uint32(res[0])
	if int64(outLen) > int64(cfg.MaxOutputBytes) {
		return nil, &BatchError{Reason: fmt.Sprintf("the output of the batch is %d bytes, at most %d", outLen, cfg.MaxOutputBytes)}
	}
	view, ok := inst.mem.Read(outPtr, outLen)
	if !ok {
		return nil, &BatchError{Reason: fmt.Sprintf("%s returned bytes %d to %d, outside its memory of %d bytes", ExportTransform, outPtr, uint64(outPtr)+uint64(outLen), inst.mem.Size())}
	}
	out := make([]byte, len(view))
	copy(out, view)
	inst.batches++
	if inst.gc != nil && cfg.GCEvery > 0 && inst.batches%cfg.GCEvery == 0 {
		if _, err := inst.gc.Call(cctx); err != nil {
			return fail(ExportGC, err)
		}
	}
	return out, nil
}

// BatchError is a batch that failed as a whole: the module trapped, exited, ran out of time
// or memory, or broke the ABI. The instance is discarded; the next batch gets a fresh one.
type BatchError struct {
	Reason string // in words, with the end of the guest's log when it wrote one
}

func (e *BatchError) Error() string { return "wasmhost: batch failed: " + e.Reason }

// callError turns a failed call into a *BatchError (or the caller's own context error).
func callError(ctx context.Context, what string, err error, log *logSink, limit interface{ String() string }) error {
	var reason string
	var exit *sys.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded:
		reason = fmt.Sprintf("%s ran past the time limit of %s", what, limit)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeContextCanceled:
		return context.Canceled
	case errors.As(err, &exit):
		reason = fmt.Sprintf("%s: the module exited with code %d", what, exit.ExitCode())
	default:
		msg, _, _ := strings.Cut(err.Error(), "\nwasm stack trace:")
		reason = fmt.Sprintf("%s trapped: %s", what, clip(msg, 300))
	}
	if len(log.buf) > 0 {
		reason += "; its log begins: " + clip(strings.TrimSpace(string(log.buf)), 300)
	}
	return &BatchError{Reason: reason}
}

// Batch is the answer to Run: one result per record, and what the guest logged.
type Batch struct {
	Results    []abi.Result
	Log        string // at most Config.MaxLogBytes
	LogDropped int64  // bytes of log beyond that
}

// Run hands the records to one instance of the module as one batch and returns one result per
// record (a refusal is data, not an error). An error is a *BatchError (the module failed the
// whole batch), the context's error, or a host failure; the instance that failed is closed.
// The results do not alias guest memory.
func (m *Module) Run(ctx context.Context, in []abi.Input) (Batch, error) {
	if len(in) == 0 {
		return Batch{}, nil
	}
	inst, err := m.acquire(ctx)
	if err != nil {
		return Batch{}, err
	}
	if m.acquired != nil {
		m.acquired()
	}
	b, err := m.run(ctx, inst, in)
	m.release(ctx, inst, err == nil)
	return b, err
}

func (m *Module) acquire(ctx context.Context) (instance, error) {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case inst := <-m.idle:
		return inst, nil
	default:
	}
	inst, err := m.instantiate(ctx)
	if err != nil {
		<-m.slots
		return nil, err
	}
	return inst, nil
}

func (m *Module) release(ctx context.Context, inst instance, ok bool) {
	defer func() { <-m.slots }()
	m.mu.Lock()
	dropped := m.dropped
	m.mu.Unlock()
	if ok && !dropped {
		select {
		case m.idle <- inst:
			return
		default:
		}
	}
	inst.close(ctx)
}

func (m *Module) run(ctx context.Context, inst instance, in []abi.Input) (Batch, error) {
	cfg := m.host.cfg
	if size := abi.BatchSize(in); size > 1<<30 {
		return Batch{}, fmt.Errorf("wasmhost: a batch of %d bytes is too large", size)
	}
	if err := ctx.Err(); err != nil {
		return Batch{}, err
	}
	out, log, dropped, err := inst.batch(ctx, in)
	if err != nil {
		return Batch{}, err
	}
	results, err := abi.ParseResults(out, len(in), cfg.MaxRecordBytes)
	if err != nil {
		return Batch{}, &BatchError{Reason: err.Error()}
	}
	b := Batch{Results: results, LogDropped: dropped}
	if len(log) > 0 {
		b.Log = string(log)
		cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "transform log", slog.String("sha256", m.info.SHA256), slog.String("log", tail(b.Log, 2000)), slog.Int64("dropped_bytes", b.LogDropped))
	}
	return b, nil
}

// clip cuts s to n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// tail keeps the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}
