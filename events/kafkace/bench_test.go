package kafkace_test

import (
	"testing"

	"github.com/myscrollr/connect/events/kafkace"
)

// BenchmarkEncodeDecode measures one binary-mode round trip of a typical platform event
// (all context attributes, seven extensions, a small JSON payload).
func BenchmarkEncodeDecode(b *testing.B) {
	e := fullEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		r, err := kafkace.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kafkace.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode measures decoding alone, the consumer's hot path.
func BenchmarkDecode(b *testing.B) {
	r, err := kafkace.Encode(fullEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kafkace.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}
