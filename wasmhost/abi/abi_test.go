package abi

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := []Input{{"quotes", []byte(`{"a":1}`)}, {"", nil}, {"s", []byte(`{}`)}}
	buf := make([]byte, BatchSize(in))
	if n := EncodeBatch(buf, in); n != len(buf) {
		t.Fatalf("EncodeBatch wrote %d of %d", n, len(buf))
	}
	got, err := DecodeBatch(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if got[i].Stream != in[i].Stream || !bytes.Equal(got[i].Data, in[i].Data) {
			t.Fatalf("record %d = %+v, want %+v", i, got[i], in[i])
		}
	}
	out := AppendCount(nil, 3)
	out = AppendOK(out, []byte(`{"b":2}`))
	out = AppendError(out, "/price", "must be a number")
	out = AppendError(out, "", "")
	res, err := ParseResults(out, 3, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if string(res[0].Data) != `{"b":2}` || !res[1].Refused || res[1].Field != "/price" || res[1].Reason != "must be a number" || res[2].Reason != "refused by the transform" {
		t.Fatalf("%+v", res)
	}
	// One record over the bound is refused; the others are kept.
	res, err = ParseResults(out, 3, 4)
	if err != nil || !res[0].Refused || !strings.Contains(res[0].Reason, "7 bytes, at most 4") || res[1].Field != "/price" {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestParseResultsRefuses(t *testing.T) {
	ok := AppendOK(AppendCount(nil, 1), []byte(`{}`))
	for _, tc := range []struct {
		name string
		b    []byte
		want int
		msg  string
	}{
		{"empty", nil, 1, "count: ends after 0 bytes"},
		{"wrong count", ok, 2, "holds 1 results for a batch of 2 records"},
		{"trailing bytes", append(ok, 0), 1, "1 bytes after the last result"},
		{"unknown tag", append(AppendCount(nil, 1), 7), 1, "unknown tag 0x7"},
		{"length past the end", append(AppendCount(nil, 1), 0, 0xff, 0xff, 0xff, 0xff), 1, "data length 4294967295 is past the end"},
		{"field not UTF-8", AppendError(AppendCount(nil, 1), "\xff", "x"), 1, "field is not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseResults(tc.b, tc.want, 1<<20)
			var oe *OutputError
			if !errors.As(err, &oe) || !strings.Contains(oe.Error(), tc.msg) {
				t.Fatalf("ParseResults = %v, want an *OutputError containing %q", err, tc.msg)
			}
		})
	}
}

// FuzzParseResults: whatever a guest returns, the parser answers want results or an
// *OutputError, never panics, and what it accepts re-encodes to the same bytes.
func FuzzParseResults(f *testing.F) {
	f.Add(AppendError(AppendOK(AppendCount(nil, 2), []byte(`{"a":1}`)), "/x", "bad"), 2)
	f.Add(AppendCount(nil, 0), 0)
	f.Add([]byte{1, 0, 0, 0, 9}, 1)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		if want < 0 || want > 1<<16 {
			return
		}
		res, err := ParseResults(b, want, 1<<20)
		if err != nil {
			var oe *OutputError
			if !errors.As(err, &oe) {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if len(res) != want {
			t.Fatalf("%d results, want %d", len(res), want)
		}
		again := AppendCount(nil, want)
		for _, r := range res {
			if r.Refused {
				if r.Reason == "refused by the transform" || len(r.Reason) >= MaxReasonBytes || strings.ContainsRune(r.Reason, '\uFFFD') {
					return // normalized: no byte-exact round trip
				}
				again = AppendError(again, r.Field, r.Reason)
				continue
			}
			again = AppendOK(again, r.Data)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, parsed %x", again, b)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	in := []Input{{"quotes", []byte(`{"a":1}`)}}
	buf := make([]byte, BatchSize(in))
	EncodeBatch(buf, in)
	f.Add(buf)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeBatch(b)
		if err != nil {
			return
		}
		out := make([]byte, BatchSize(got))
		EncodeBatch(out, got)
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoded %x, decoded %x", out, b)
		}
	})
}
