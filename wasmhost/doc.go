// Package wasmhost will run the sandboxed WebAssembly transforms that normalize data-source
// records (wazero: compile once and cache, no filesystem, no network, bounded memory and time
// per call, every call bound to the request context). It has no code yet: the transform ABI is
// specified by the data-ingestion work, which builds it. The module exists so the workspace
// layout of docs/architecture.md holds from the start.
package wasmhost
