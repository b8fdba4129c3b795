package wasmhost

import (
	"context"
	"testing"

	"github.com/myscrollr/connect/wasmhost/examples/quotes"
)

// BenchmarkQuotes measures the per-record cost of the quotes transform on batches of 500
// (ns/op is per record): natively, and as the Go and AssemblyScript guests with every limit
// on. The "uninterruptible" runs measure what close-on-context-done costs (docs/decisions/0009).
func BenchmarkQuotes(b *testing.B) {
	const batch = 500
	in := sample(batch)
	b.Run("native", func(b *testing.B) {
		var dst []byte
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := in[i%batch]
			dst, _ = quotes.Append(dst[:0], r.Stream, r.Data)
		}
	})
	goWasm, _ := goModules(b)
	for _, tc := range []struct {
		name            string
		wasm            func(testing.TB) []byte
		uninterruptible bool
	}{
		{"go-wasip1", func(testing.TB) []byte { return goWasm }, false},
		{"assemblyscript", asModule, false},
		{"go-wasip1-uninterruptible", func(testing.TB) []byte { return goWasm }, true},
		{"assemblyscript-uninterruptible", asModule, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHost(b, Config{PoolSize: 1, uninterruptible: tc.uninterruptible})
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
