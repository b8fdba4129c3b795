package wasmhost

import (
	"context"
	"testing"

	"github.com/myscrollr/connect/wasmhost/examples/quotes"
)

// BenchmarkQuotes measures the per-record cost of the quotes transform on batches of 500
// (ns/op is per record): natively, and as the Go and AssemblyScript guests with every limit
// on. Two Go implementations, each measured natively and as a guest so each pair runs the
// same code: native and go-wasip1 scan in place (quotes.Append), native-json and
// go-wasip1-json decode with encoding/json (quotes.AppendJSON). Every guest is measured
// in worker processes ("process") and in this process under close-on-context-done
// ("inprocess"). The "inprocess-uninterruptible" runs have no time limit at all: they measure
// what close-on-context-done costs (docs/decisions/0009). ns/op is wall time per record; in
// process mode it includes the worker's time (the host waits for its answer).
func BenchmarkQuotes(b *testing.B) {
	const batch = 500
	in := sample(batch)
	for _, n := range []struct {
		name string
		fn   func([]byte, string, []byte) ([]byte, *quotes.Problem)
	}{{"native", quotes.Append}, {"native-json", quotes.AppendJSON}} {
		b.Run(n.name, func(b *testing.B) {
			var dst []byte
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := in[i%batch]
				dst, _ = n.fn(dst[:0], r.Stream, r.Data)
			}
		})
	}
	goWasm, _ := goModules(b)
	type variant struct {
		name            string
		wasm            func(testing.TB) []byte
		isolation       string
		uninterruptible bool
	}
	var vs []variant
	for _, g := range []struct {
		name string
		wasm func(testing.TB) []byte
	}{{"go-wasip1", func(testing.TB) []byte { return goWasm }}, {"go-wasip1-json", goJSONModule}, {"assemblyscript", asModule}} {
		vs = append(vs,
			variant{g.name + "/process", g.wasm, IsolationProcess, false},
			variant{g.name + "/inprocess", g.wasm, IsolationInProcess, false},
			variant{g.name + "/inprocess-uninterruptible", g.wasm, IsolationInProcess, true})
	}
	for _, tc := range vs {
		b.Run(tc.name, func(b *testing.B) {
			h := newHost(b, Config{PoolSize: 1, Isolation: tc.isolation, uninterruptible: tc.uninterruptible})
			m, err := h.Load(context.Background(), tc.wasm(b))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				res, err := m.Run(ctx, in[:min(batch, b.N-done)])
				if err != nil {
					b.Fatal(err)
				}
				_ = res
			}
		})
	}
}
