// Package quotes is the sample transform every example normalizes with: the "quotes" stream
// of a market-data source, from the source's shape to the platform's standard one. It is
// plain Go so the same code runs natively (the benchmark's baseline) and as a GOOS=wasip1
// guest (wasmhost/examples/go); wasmhost/examples/assemblyscript implements the same rules.
//
//	in:  {"symbol":"aapl","price":"187.23","currency":"usd","ts":1700000000,"volume":1234567,...}
//	out: {"symbol":"AAPL","price_cents":18723,"currency":"USD","observed_at_ms":1700000000000,"volume":1234567}
//
// symbol is 1 to 12 of A-Z a-z 0-9 . - (upper-cased); price a decimal string with at most
// two fraction digits and 12 integer digits (to integer cents); currency three ASCII letters
// (upper-cased); ts whole seconds since the epoch, 0 to 10^11; volume, optional, a
// non-negative integer. Other members are dropped. A record that breaks a rule is refused
// with the member's JSON pointer and the reason.
//
// Two implementations of the same rules, so a benchmark can tell the language from the way it
// is written: Append scans the record in place with no reflection and no allocation (scan.go:
// the way a transform should be written, and what wasmhost/examples/go runs) and AppendJSON
// decodes it with encoding/json into a struct (reflection, allocations: what a developer
// writes first; wasmhost/testdata/gojson runs it). On well-formed records they answer the same;
// they differ on edge cases (AppendJSON matches member names case-insensitively, decodes
// escapes and quotes encoding/json's error; Append matches names exactly and refuses a member
// it reads that holds an escape).
package quotes

import (
	"encoding/json"
	"strconv"
)

// Stream is the only stream the transform knows.
const Stream = "quotes"

// Problem is a refusal: the member (JSON pointer) and why.
type Problem struct {
	Field  string
	Reason string
}

type quote struct {
	Symbol   *string      `json:"symbol"`
	Price    *string      `json:"price"`
	Currency *string      `json:"currency"`
	TS       *json.Number `json:"ts"`
	Volume   *json.Number `json:"volume"`
}

// AppendJSON normalizes one record of stream with encoding/json and appends it to dst.
func AppendJSON(dst []byte, stream string, data []byte) ([]byte, *Problem) {
	if stream != Stream {
		return dst, &Problem{"", "unknown stream " + strconv.Quote(stream) + ": this transform knows \"quotes\""}
	}
	var q quote
	if err := json.Unmarshal(data, &q); err != nil {
		return dst, &Problem{"", "not a quotes record: " + err.Error()}
	}
	if q.Symbol == nil || !symbol(*q.Symbol) {
		return dst, &Problem{"/symbol", "required: 1 to 12 of A-Z a-z 0-9 . -"}
	}
	if q.Price == nil {
		return dst, &Problem{"/price", "required: a decimal string such as \"187.23\""}
	}
	cents, ok := Cents(*q.Price)
	if !ok {
		return dst, &Problem{"/price", "must be a decimal string with at most 12 integer and 2 fraction digits"}
	}
	if q.Currency == nil || !currency(*q.Currency) {
		return dst, &Problem{"/currency", "required: three ASCII letters"}
	}
	if q.TS == nil {
		return dst, &Problem{"/ts", "required: whole seconds since the epoch"}
	}
	ts, err := strconv.ParseInt(string(*q.TS), 10, 64)
	if err != nil || ts < 0 || ts > 1e11 {
		return dst, &Problem{"/ts", "must be whole seconds since the epoch, 0 to 100000000000"}
	}
	var vol int64 = -1
	if q.Volume != nil {
		vol, err = strconv.ParseInt(string(*q.Volume), 10, 64)
		if err != nil || vol < 0 {
			return dst, &Problem{"/volume", "must be a non-negative integer"}
		}
	}
	return appendOut(dst, *q.Symbol, cents, *q.Currency, ts, vol), nil
}

// appendOut appends the normalized record (vol < 0: no volume).
func appendOut[S string | []byte](dst []byte, sym S, cents int64, cur S, ts, vol int64) []byte {
	dst = append(dst, `{"symbol":"`...)
	dst = upper(dst, sym)
	dst = append(dst, `","price_cents":`...)
	dst = strconv.AppendInt(dst, cents, 10)
	dst = append(dst, `,"currency":"`...)
	dst = upper(dst, cur)
	dst = append(dst, `","observed_at_ms":`...)
	dst = strconv.AppendInt(dst, ts*1000, 10)
	if vol >= 0 {
		dst = append(dst, `,"volume":`...)
		dst = strconv.AppendInt(dst, vol, 10)
	}
	return append(dst, '}')
}

// Cents parses a decimal price string ("187.2", "187.23", "187") into integer cents.
func Cents[S string | []byte](s S) (int64, bool) {
	intPart, frac := s, s[len(s):]
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	if len(intPart) == 0 || len(intPart) > 12 || len(frac) > 2 || (len(frac) == 0 && len(intPart) < len(s)) {
		return 0, false
	}
	var c int64
	for i := 0; i < len(intPart); i++ {
		if intPart[i] < '0' || intPart[i] > '9' {
			return 0, false
		}
		c = c*10 + int64(intPart[i]-'0')
	}
	for i := 0; i < 2; i++ {
		c *= 10
		if i < len(frac) {
			if frac[i] < '0' || frac[i] > '9' {
				return 0, false
			}
			c += int64(frac[i] - '0')
		}
	}
	return c, true
}

func symbol[S string | []byte](s S) bool {
	if len(s) == 0 || len(s) > 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func currency[S string | []byte](s S) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func upper[S string | []byte](dst []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
