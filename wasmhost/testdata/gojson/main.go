//go:build wasip1

// Command gojson is the quotes transform decoded with encoding/json (quotes.AppendJSON) as a
// wasmhost ABI v1 guest, for the benchmark that compares it with examples/go (quotes.Append,
// a scanner): the same program otherwise. wasmhost's tests build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o gojson.wasm ./testdata/gojson
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
		rec, prob = quotes.AppendJSON(rec[:0], r.Stream, r.Data)
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
