package wasmhost

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Values of Config.Isolation (WASM_ISOLATION).
const (
	IsolationProcess   = "process"
	IsolationInProcess = "inprocess"
)

// Defaults of Config.
const (
	DefaultMaxModuleBytes = 16 << 20
	DefaultMaxMemoryPages = 2048 // 128 MiB of linear memory per instance
	DefaultBatchTimeout   = 2 * time.Second
	DefaultMaxOutputBytes = 32 << 20
	DefaultMaxRecordBytes = 256 << 10
	DefaultMaxLogBytes    = 16 << 10
	DefaultGCEvery        = 4
	DefaultMaxModules     = 64
	// DefaultInitTimeout bounds instantiating a module (its _initialize included).
	DefaultInitTimeout = 5 * time.Second
)

// Config is the host's configuration; its zero value is usable (every field has a default).
// ConfigFromEnv reads it from the WASM_* environment variables.
type Config struct {
	// CacheDir (WASM_CACHE_DIR, default a new temporary directory) is wazero's compilation
	// cache: a module compiled once is loaded from there by the next process (a 3.4 MB Go
	// module: about 1.3 s cold, 45 ms from the cache).
	CacheDir string
	// MaxModuleBytes (WASM_MAX_MODULE_BYTES, default 16 MiB) bounds a module's size.
	MaxModuleBytes int
	// MaxMemoryPages (WASM_MAX_MEMORY_PAGES, default 2048 = 128 MiB) bounds one instance's
	// linear memory, in 64 KiB pages; a guest past it sees memory.grow fail.
	MaxMemoryPages uint32
	// BatchTimeout (WASM_BATCH_TIMEOUT, default 2s) bounds one batch: past it the batch fails
	// and its instance is gone (process isolation: the worker is killed with SIGKILL; in-process:
	// the instance is closed and the guest stops at its next function entry or loop back edge).
	BatchTimeout time.Duration
	// InitTimeout (WASM_INIT_TIMEOUT, default 5s) bounds instantiating a module.
	InitTimeout time.Duration
	// MaxOutputBytes (WASM_MAX_OUTPUT_BYTES, default 32 MiB) bounds the results buffer of one
	// batch: past it the batch fails.
	MaxOutputBytes int
	// MaxRecordBytes (WASM_MAX_RECORD_BYTES, default 256 KiB, the records table's bound)
	// bounds one normalized record: past it that record is refused, the others are kept.
	MaxRecordBytes int
	// MaxLogBytes (WASM_MAX_LOG_BYTES, default 16 KiB) bounds what a guest writes to stdout and
	// stderr during one batch; the rest is dropped (the guest is not told) and counted.
	MaxLogBytes int
	// PoolSize (WASM_POOL_SIZE, default GOMAXPROCS) is how many instances of one module run at
	// once; more batches wait for one.
	PoolSize int
	// GCEvery (WASM_GC_EVERY, default 4) calls a module's connect_gc export every GCEvery
	// batches of an instance (0: never).
	GCEvery int
	// MaxModules (WASM_MAX_MODULES, default 64) is how many compiled modules are kept; the
	// least recently used is dropped past it.
	MaxModules int
	// Isolation (WASM_ISOLATION) is where guests run: IsolationProcess, in worker processes
	// (the function's own binary re-executed, see MaybeWorker) killed at the batch deadline;
	// IsolationInProcess, in this process under wazero's close-on-context-done. Default: process
	// when the binary called MaybeWorker, in-process otherwise (a binary that cannot be a worker;
	// tests of other packages). The measured cost of each is in docs/decisions/0009.
	Isolation string
	// uninterruptible turns wazero's close-on-context-done off: only the benchmark that
	// measured the decision (docs/decisions/0009) sets it; without it a spinning guest
	// cannot be stopped.
	uninterruptible bool
	// Logger receives guests' log output and the host's own notes (nil: slog.Default()).
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxModuleBytes == 0 {
		c.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if c.MaxMemoryPages == 0 {
		c.MaxMemoryPages = DefaultMaxMemoryPages
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.MaxOutputBytes == 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.MaxLogBytes == 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
	}
	if c.PoolSize == 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	if c.MaxModules == 0 {
		c.MaxModules = DefaultMaxModules
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Isolation == "" {
		c.Isolation = IsolationInProcess
		if workerCapable.Load() {
			c.Isolation = IsolationProcess
		}
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.MaxModuleBytes < 0 {
		errs = append(errs, errors.New("MaxModuleBytes (WASM_MAX_MODULE_BYTES) must not be negative"))
	}
	if c.MaxMemoryPages > 65536 {
		errs = append(errs, errors.New("MaxMemoryPages (WASM_MAX_MEMORY_PAGES) must be at most 65536 (4 GiB)"))
	}
	if c.BatchTimeout < 0 || c.InitTimeout < 0 {
		errs = append(errs, errors.New("BatchTimeout (WASM_BATCH_TIMEOUT) and InitTimeout (WASM_INIT_TIMEOUT) must not be negative"))
	}
	if c.MaxOutputBytes < 0 || c.MaxRecordBytes < 0 || c.MaxLogBytes < 0 {
		errs = append(errs, errors.New("MaxOutputBytes, MaxRecordBytes and MaxLogBytes (WASM_MAX_*_BYTES) must not be negative"))
	}
	if c.PoolSize < 0 || c.GCEvery < 0 || c.MaxModules < 0 {
		errs = append(errs, errors.New("PoolSize (WASM_POOL_SIZE), GCEvery (WASM_GC_EVERY) and MaxModules (WASM_MAX_MODULES) must not be negative"))
	}
	switch c.Isolation {
	case "", IsolationInProcess:
	case IsolationProcess:
		if !workerCapable.Load() {
			errs = append(errs, errors.New("Isolation (WASM_ISOLATION) process needs wasmhost.MaybeWorker() called at the top of main: this binary cannot be a worker"))
		}
	default:
		errs = append(errs, fmt.Errorf("Isolation (WASM_ISOLATION) must be %q or %q, not %q", IsolationProcess, IsolationInProcess, c.Isolation))
	}
	return errors.Join(errs...)
}

// ConfigFromEnv reads the WASM_* settings through getenv (os.Getenv); unset ones keep their
// defaults. Sizes are bytes, durations Go durations ("2s").
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var c Config
	var errs []error
	c.CacheDir = strings.TrimSpace(getenv("WASM_CACHE_DIR"))
	c.Isolation = strings.TrimSpace(getenv("WASM_ISOLATION"))
	ints := []struct {
		env string
		dst *int
	}{
		{"WASM_MAX_MODULE_BYTES", &c.MaxModuleBytes},
		{"WASM_MAX_OUTPUT_BYTES", &c.MaxOutputBytes},
		{"WASM_MAX_RECORD_BYTES", &c.MaxRecordBytes},
		{"WASM_MAX_LOG_BYTES", &c.MaxLogBytes},
		{"WASM_POOL_SIZE", &c.PoolSize},
		{"WASM_GC_EVERY", &c.GCEvery},
		{"WASM_MAX_MODULES", &c.MaxModules},
	}
	for _, s := range ints {
		if v := strings.TrimSpace(getenv(s.env)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a non-negative integer", s.env, v))
				continue
			}
			*s.dst = n
		}
	}
	if v := strings.TrimSpace(getenv("WASM_MAX_MEMORY_PAGES")); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("WASM_MAX_MEMORY_PAGES: %q is not a positive integer", v))
		}
		c.MaxMemoryPages = uint32(n)
	}
	for _, s := range []struct {
		env string
		dst *time.Duration
	}{{"WASM_BATCH_TIMEOUT", &c.BatchTimeout}, {"WASM_INIT_TIMEOUT", &c.InitTimeout}} {
		if v := strings.TrimSpace(getenv(s.env)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a positive duration", s.env, v))
				continue
			}
			*s.dst = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, c.validate()
}

// EffectiveMaxModuleBytes is the module size bound c gives (its default when unset): callers
// bound an upload's body by it.
func EffectiveMaxModuleBytes(c Config) int { return c.withDefaults().MaxModuleBytes }
