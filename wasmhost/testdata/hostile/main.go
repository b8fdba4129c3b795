//go:build wasip1

// Command hostile is a transform that misbehaves on purpose, chosen by the stream of the
// batch's first record, for wasmhost's containment tests:
//
//	spin   loops forever
//	hog    allocates until the runtime dies of it
//	flood  answers each record with a 1 MiB object
//	chatty writes 1 MiB to stderr, then echoes
//	anything else echoes the records
package main

import (
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/myscrollr/connect/wasmhost/abi"
)

var in, out []byte
var hoard [][]byte

//go:wasmexport connect_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport connect_alloc
func alloc(n int32) uint32 {
	in = make([]byte, n)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(in))))
}

//go:wasmexport connect_transform
func transform(_, n uint32) uint64 {
	batch, err := abi.DecodeBatch(in[:n])
	if err != nil {
		panic(err)
	}
	out = abi.AppendCount(out[:0], len(batch))
	switch batch[0].Stream {
	case "spin":
		for {
		}
	case "hog":
		for {
			hoard = append(hoard, make([]byte, 8<<20))
		}
	case "flood":
		big := `{"x":"` + strings.Repeat("y", 1<<20) + `"}`
		for range batch {
			out = abi.AppendOK(out, []byte(big))
		}
	case "chatty":
		line := strings.Repeat("z", 1023) + "\n"
		for range 1024 {
			os.Stderr.WriteString(line)
		}
		fallthrough
	default:
		for _, r := range batch {
			out = abi.AppendOK(out, r.Data)
		}
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | uint64(len(out))
}

//go:wasmexport connect_gc
func gc() { runtime.GC() }

func main() {}
