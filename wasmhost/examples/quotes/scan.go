package quotes

import "strconv"

// member kinds found by scan.
const (
	absent = iota
	str    // a string without escapes: the span is its contents
	other  // a number, true, false, an object or an array: the span is its text
	escStr // a string holding an escape (refused where it is read)
)

// span is one member's value in the record's text.
type span struct {
	v    []byte
	kind int
}

// fields are the members the transform reads.
type fields struct{ symbol, price, currency, ts, volume span }

// Append normalizes one record of stream and appends it to dst. It scans the record's JSON
// text once, in place: no reflection, no allocation.
func Append(dst []byte, stream string, data []byte) ([]byte, *Problem) {
	if stream != Stream {
		return dst, &Problem{"", "unknown stream " + strconv.Quote(stream) + ": this transform knows \"quotes\""}
	}
	var f fields
	if !scan(data, &f) {
		return dst, &Problem{"", "not a quotes record: not a JSON object"}
	}
	if f.symbol.kind != str || !symbol(f.symbol.v) {
		return dst, &Problem{"/symbol", "required: 1 to 12 of A-Z a-z 0-9 . -"}
	}
	if f.price.kind == absent {
		return dst, &Problem{"/price", "required: a decimal string such as \"187.23\""}
	}
	cents, ok := Cents(f.price.v)
	if f.price.kind != str || !ok {
		return dst, &Problem{"/price", "must be a decimal string with at most 12 integer and 2 fraction digits"}
	}
	if f.currency.kind != str || !currency(f.currency.v) {
		return dst, &Problem{"/currency", "required: three ASCII letters"}
	}
	if f.ts.kind == absent {
		return dst, &Problem{"/ts", "required: whole seconds since the epoch"}
	}
	ts, ok := integer(f.ts)
	if !ok || ts < 0 || ts > 1e11 {
		return dst, &Problem{"/ts", "must be whole seconds since the epoch, 0 to 100000000000"}
	}
	var vol int64 = -1
	if f.volume.kind != absent {
		if vol, ok = integer(f.volume); !ok || vol < 0 {
			return dst, &Problem{"/volume", "must be a non-negative integer"}
		}
	}
	return appendOut(dst, f.symbol.v, cents, f.currency.v, ts, vol), nil
}

// integer reads a number member as a whole number of at most 18 digits.
func integer(s span) (int64, bool) {
	b := s.v
	if s.kind != other {
		return 0, false
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// scanner walks a record's text.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str moves past the string whose opening quote is at s.i; it reports whether the string
// ended and whether it holds an escape.
func (s *scanner) str() (ok, esc bool) {
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return true, esc
		case '\\':
			esc = true
			s.i++
		}
		s.i++
	}
	return false, esc
}

// value moves past any JSON value that is not a string.
func (s *scanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	if c := s.b[s.i]; c == '{' || c == '[' {
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if ok, _ := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}

// scan finds the members the transform reads in a JSON object's text (the last of a name
// wins, as with encoding/json; null counts as absent); false when the text is not an object.
func scan(b []byte, f *fields) bool {
	s := scanner{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		s.ws()
		return s.i == len(b)
	}
	for s.i < len(b) {
		s.ws()
		if s.i >= len(b) || b[s.i] != '"' {
			return false
		}
		k0 := s.i + 1
		if ok, _ := s.str(); !ok {
			return false
		}
		key := b[k0 : s.i-1]
		s.ws()
		if s.i >= len(b) || b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		v0 := s.i
		var sp span
		if s.i < len(b) && b[s.i] == '"' {
			ok, esc := s.str()
			if !ok {
				return false
			}
			sp = span{b[v0+1 : s.i-1], str}
			if esc {
				sp.kind = escStr
			}
		} else {
			if !s.value() {
				return false
			}
			sp = span{b[v0:s.i], other}
			if string(sp.v) == "null" {
				sp = span{}
			}
		}
		switch string(key) {
		case "symbol":
			f.symbol = sp
		case "price":
			f.price = sp
		case "currency":
			f.currency = sp
		case "ts":
			f.ts = sp
		case "volume":
			f.volume = sp
		}
		s.ws()
		if s.i >= len(b) {
			return false
		}
		c := b[s.i]
		s.i++
		if c == '}' {
			s.ws()
			return s.i == len(b)
		}
		if c != ',' {
			return false
		}
	}
	return false
}
