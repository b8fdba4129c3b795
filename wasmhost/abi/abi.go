// Package abi is the byte format of wasmhost's transform ABI (version [Version]): how a batch
// of records is laid out in guest memory on the way in, and how the guest lays out one result
// per record on the way out. It imports nothing but the standard library, so a Go guest built
// with GOOS=wasip1 uses the same code as the host (see wasmhost/examples/go).
//
// All integers are unsigned 32-bit little endian.
//
//	batch   = count, count × (streamLen, stream, dataLen, data)
//	results = count, count × (0x00, dataLen, data) | (0x01, fieldLen, field, reasonLen, reason)
//
// data is a JSON object as UTF-8 text; field is a JSON pointer (RFC 6901) into the input
// record ("" for the whole record) and reason says in words why the record is refused. The
// results hold exactly one entry per record of the batch, in the batch's order.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Version is the ABI version this package speaks; a guest's connect_abi_version export must
// return it.
const Version = 1

// Tags of a result entry.
const (
	TagOK    = 0x00
	TagError = 0x01
)

// MaxFieldBytes and MaxReasonBytes bound the two strings of a refusal.
const (
	MaxFieldBytes  = 1 << 10
	MaxReasonBytes = 1 << 10
)

// Input is one record handed to a transform.
type Input struct {
	Stream string
	Data   []byte
}

// Result is a transform's answer for one record: Data (a JSON object) when Refused is false,
// otherwise Field and Reason.
type Result struct {
	Data    []byte
	Refused bool
	Field   string
	Reason  string
}

// BatchSize is the length of EncodeBatch's output for in.
func BatchSize(in []Input) int {
	n := 4
	for _, r := range in {
		n += 8 + len(r.Stream) + len(r.Data)
	}
	return n
}

// EncodeBatch writes in to dst, which must hold BatchSize(in) bytes, and returns the bytes
// written.
func EncodeBatch(dst []byte, in []Input) int {
	binary.LittleEndian.PutUint32(dst, uint32(len(in)))
	o := 4
	for _, r := range in {
		binary.LittleEndian.PutUint32(dst[o:], uint32(len(r.Stream)))
		o += 4
		o += copy(dst[o:], r.Stream)
		binary.LittleEndian.PutUint32(dst[o:], uint32(len(r.Data)))
		o += 4
		o += copy(dst[o:], r.Data)
	}
	return o
}

// DecodeBatch reads a batch (the guest side). The records' Data alias b.
func DecodeBatch(b []byte) ([]Input, error) {
	d := decoder{b: b}
	n, err := d.u32("count")
	if err != nil {
		return nil, err
	}
	if uint64(n)*8 > uint64(len(d.b)) {
		return nil, fmt.Errorf("abi: batch count %d does not fit in %d bytes", n, len(b))
	}
	in := make([]Input, n)
	for i := range in {
		s, err := d.bytes("stream")
		if err != nil {
			return nil, fmt.Errorf("abi: record %d: %w", i, err)
		}
		data, err := d.bytes("data")
		if err != nil {
			return nil, fmt.Errorf("abi: record %d: %w", i, err)
		}
		in[i] = Input{Stream: string(s), Data: data}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("abi: %d bytes after the last record", len(d.b))
	}
	return in, nil
}

// AppendOK appends a result entry holding data (the guest side).
func AppendOK(dst, data []byte) []byte {
	dst = append(dst, TagOK)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	return append(dst, data...)
}

// AppendError appends a refusal entry (the guest side).
func AppendError(dst []byte, field, reason string) []byte {
	dst = append(dst, TagError)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(field)))
	dst = append(dst, field...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(reason)))
	return append(dst, reason...)
}

// AppendCount starts a results buffer for n records (the guest side).
func AppendCount(dst []byte, n int) []byte {
	return binary.LittleEndian.AppendUint32(dst, uint32(n))
}

// OutputError is a guest's results buffer that breaks the ABI: the batch fails as a whole.
type OutputError struct {
	Offset int    // byte offset in the results buffer
	Reason string // what is wrong there
}

func (e *OutputError) Error() string {
	return fmt.Sprintf("abi: transform output at byte %d: %s", e.Offset, e.Reason)
}

// ParseResults reads a guest's results buffer for a batch of want records. A record's data
// larger than maxData bytes is turned into a refusal of that record (the others are kept);
// anything else that breaks the format is an *OutputError. The results' Data alias b.
func ParseResults(b []byte, want, maxData int) ([]Result, error) {
	d := decoder{b: b}
	n, err := d.u32("count")
	if err != nil {
		return nil, &OutputError{0, err.Error()}
	}
	if int64(n) != int64(want) {
		return nil, &OutputError{0, fmt.Sprintf("holds %d results for a batch of %d records", n, want)}
	}
	out := make([]Result, want)
	for i := range out {
		at := d.off
		if len(d.b) == 0 {
			return nil, &OutputError{at, fmt.Sprintf("ends before result %d", i)}
		}
		tag := d.b[0]
		d.skip(1)
		switch tag {
		case TagOK:
			data, err := d.bytes("data")
			if err != nil {
				return nil, &OutputError{at, fmt.Sprintf("result %d: %v", i, err)}
			}
			if len(data) > maxData {
				out[i] = Result{Refused: true, Reason: fmt.Sprintf("the transform's output is %d bytes, at most %d", len(data), maxData)}
				continue
			}
			out[i] = Result{Data: data}
		case TagError:
			field, err := d.bytes("field")
			if err == nil && len(field) > MaxFieldBytes {
				err = fmt.Errorf("field is %d bytes, at most %d", len(field), MaxFieldBytes)
			}
			if err == nil && !utf8.Valid(field) {
				err = errors.New("field is not UTF-8")
			}
			if err != nil {
				return nil, &OutputError{at, fmt.Sprintf("result %d: %v", i, err)}
			}
			reason, err := d.bytes("reason")
			if err == nil && len(reason) > MaxReasonBytes {
				reason = reason[:MaxReasonBytes]
			}
			if err != nil {
				return nil, &OutputError{at, fmt.Sprintf("result %d: %v", i, err)}
			}
			r := string(reason)
			if !utf8.ValidString(r) {
				r = string([]rune(r)) // replaces invalid bytes with U+FFFD
			}
			if r == "" {
				r = "refused by the transform"
			}
			out[i] = Result{Refused: true, Field: string(field), Reason: r}
		default:
			return nil, &OutputError{at, fmt.Sprintf("result %d: unknown tag %#x", i, tag)}
		}
	}
	if len(d.b) != 0 {
		return nil, &OutputError{d.off, fmt.Sprintf("%d bytes after the last result", len(d.b))}
	}
	return out, nil
}

type decoder struct {
	b   []byte
	off int
}

func (d *decoder) skip(n int) { d.b, d.off = d.b[n:], d.off+n }

func (d *decoder) u32(what string) (uint32, error) {
	if len(d.b) < 4 {
		return 0, fmt.Errorf("%s: ends after %d bytes", what, d.off+len(d.b))
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.skip(4)
	return v, nil
}

func (d *decoder) bytes(what string) ([]byte, error) {
	n, err := d.u32(what + " length")
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(d.b)) {
		return nil, fmt.Errorf("%s length %d is past the end (%d bytes left)", what, n, len(d.b))
	}
	v := d.b[:n:n]
	d.skip(int(n))
	return v, nil
}
