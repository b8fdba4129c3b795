// Package wasmhost runs the WebAssembly transforms that normalize data-source records: untrusted
// code from integration developers, on our machines. It is built on wazero (no cgo) and knows
// nothing of the database: callers hand it a module's bytes and a batch of records.
//
// # The ABI, version 1
//
// A transform is a WebAssembly core module (a WASI "reactor": no main loop) that exports
//
//	memory                                   its linear memory
//	connect_abi_version() -> i32             must return 1 (abi.Version)
//	connect_alloc(size i32) -> i32           a buffer of size bytes in its memory for the batch
//	connect_transform(ptr i32, len i32) -> i64
//	                                         reads the batch at [ptr, ptr+len), answers
//	                                         (outPtr << 32) | outLen: its results buffer
//	connect_gc()                             optional: collect garbage (Go guests: runtime.GC)
//	_initialize()                            optional: called once when instantiated
//
// Per batch the host calls connect_alloc, writes the batch into the buffer, calls
// connect_transform and copies the results out; the buffers are the guest's, valid until its
// next call. The byte formats are package abi's: a batch is a count and (stream, data) pairs;
// the results hold exactly one entry per record, in order: the normalized record (a JSON
// object) or a refusal (a JSON pointer and a reason). A refusal is data: that record is
// rejected with its reason and the others are kept. A trap, an exit, a time or memory limit, or
// results that break the format fail the whole batch ([BatchError]); the instance is thrown
// away and the next batch gets a fresh one.
//
// # Containment
//
//   - Imports: only our own wasi_snapshot_preview1 (wasi.go), never wazero's: args and
//     environment are empty, clocks are the host's (harmless; a transform should use its
//     record's times), random_get gives random bytes, poll_oneoff returns at once (a guest
//     never sleeps), proc_exit ends the instance, fd_write sends descriptors 1 and 2 to a log
//     capped per batch (Config.MaxLogBytes; the guest is not told what is dropped), and the
//     fd_* functions standard Go's runtime links at start (fd_close, fd_fdstat_get,
//     fd_fdstat_set_flags, fd_prestat_get, fd_prestat_dir_name) answer EBADF or describe 0-2
//     only: there is no preopened directory and no other descriptor. Anything else (path_*,
//     sock_*, fd_read, another import module) is refused at load with its name and "no file
//     system" / "no network" / "not provided": nothing can reach a file, a socket or the
//     environment, because nothing that could is linked.
//   - Memory: Config.MaxMemoryPages per instance (wazero's memory limit, in a worker too):
//     past it memory.grow fails, and a Go guest dies of "out of memory" (a trap, the batch
//     fails). A worker also bounds its whole address space (RLIMIT_AS on Linux).
//   - Time: a batch runs under Config.BatchTimeout. With process isolation (Config.Isolation,
//     WASM_ISOLATION=process, the default of a binary that calls [MaybeWorker]) an instance is
//     a worker process, this binary re-executed, running the module with no check inside; the
//     host SIGKILLs it at the deadline and the slot gets a new worker (worker.go: the frames on
//     its pipes, its empty environment, RLIMIT_AS, death with the host). In process
//     (inprocess) wazero's close-on-context-done checks at function entries and loop back
//     edges and closes the instance: 5-7x slower. Measured costs and the alternatives weighed
//     are in docs/decisions/0009-wasm-transforms.md.
//   - Size: Config.MaxModuleBytes per module, checked before compiling; Config.MaxOutputBytes
//     per batch's results (the batch fails) and Config.MaxRecordBytes per record (that record is
//     refused).
//   - Validation at load ([Host.Load]): size, the \0asm header, compiling, imports against the
//     list above (names and signatures), the required exports and their signatures, one
//     instantiation (its _initialize under Config.InitTimeout) and the ABI version. Each
//     refusal is a [ModuleError] whose Reason a developer can act on; nothing is run on a
//     record before all of it passed.
//
// # Speed
//
// Compiling is the expensive part (a 3.4 MB Go module: about 1.3 s), so a module is compiled
// once per process (modules are kept by sha256, least recently used dropped past
// Config.MaxModules) and once per machine (wazero's compilation cache in Config.CacheDir,
// WASM_CACHE_DIR: about 45 ms to load). Instantiating costs milliseconds (a Go runtime
// starting), so instances are pooled per module (Config.PoolSize at once) and reused batch
// after batch, never one per record. A reused Go reactor stops collecting garbage on its own
// (its heap was measured past 500 MiB after a few hundred calls), so connect_gc is called every
// Config.GCEvery batches of an instance (it held the heap at 8 MiB).
//
// The examples (examples/go, examples/assemblyscript, both the quotes transform of
// examples/quotes, written as scanners without reflection) are built by `make transforms` and
// by this package's tests; testdata/gojson is the same transform with encoding/json, for the
// benchmark that shows what reflection costs inside the sandbox.
package wasmhost
