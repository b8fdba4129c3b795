//go:build wasip1

// Command go is the quotes transform (wasmhost/examples/quotes) as a wasmhost ABI v1 guest
// in standard Go, written for speed: quotes.Append scans each record in place (no
// encoding/json, no reflection, no allocation per record), and the batch and results buffers
// are reused from batch to batch. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o quotes-go.wasm ./examples/go
//
// (make transforms does). c-shared makes a WASI reactor: the host calls _initialize once,
// then the exports below for every batch, on the same instance.
package main

import (
	"runtime"
	"unsafe"

	"github.com/myscrollr/connect/wasmhost/abi"
	"github.com/myscrollr/connect/wasmhost/examples/quotes"
)

// in holds the batch the host writes; out the results it reads. Both stay referenced by these
// globals between calls, and Go's collector does not move memory, so the pointers handed to
// the host stay valid until the next call.
var in, out []byte

//go:wasmexport connect_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport connect_alloc
func alloc(n int32) uint32 {
	if cap(in) < int(n) {
		in = make([]byte, n)
	}
	in = in[:n]
	return addr(in)
}

//go:wasmexport connect_transform
func transform(p, n uint32) uint64 {
	batch, err := abi.DecodeBatch(in[:n])
	if err != nil || p != addr(in) {
		panic("connect_transform: the batch is not where connect_alloc put it")
	}
	out = abi.AppendCount(out[:0], len(batch))
	var rec []byte
	for _, r := range batch {
		var prob *quotes.Problem
		rec, prob = quotes.Append(rec[:0], r.Stream, r.Data)
		if prob != nil {
			out = abi.AppendError(out, prob.Field, prob.Reason)
			continue
		}
		out = abi.AppendOK(out, rec)
	}
	return uint64(addr(out))<<32 | uint64(len(out))
}

// gc is called by the host every few batches: a reused Go reactor otherwise lets its heap
// grow without bound (measured: past 500 MiB after a few hundred calls).
//
//go:wasmexport connect_gc
func gc() { runtime.GC() }

func addr(b []byte) uint32 {
	if cap(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

func main() {}
