package kafkace

import (
	"fmt"
	"unicode/utf8"
)

// validName reports whether name is a CloudEvents 1.0 attribute name: lower-case ASCII
// letters and digits, at least one character.
func validName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// CheckString returns why s is not a CloudEvents String ("" if it is one): it must be valid
// UTF-8 without control characters, surrogates or noncharacters, per the CloudEvents type
// system. It takes bytes too, so producers that build headers from raw column bytes (the relay)
// apply the same rule without converting.
func CheckString[S ~string | ~[]byte](s S) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf { // ASCII fast path
			if c < 0x20 || c == 0x7f {
				return fmt.Sprintf("control character U+%04X at byte %d", c, i)
			}
			i++
			continue
		}
		// At most 4 bytes are converted; the conversion does not escape, so it stays on the stack.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("invalid UTF-8 at byte %d", i)
		case r >= 0x80 && r <= 0x9f:
			return fmt.Sprintf("control character U+%04X at byte %d", r, i)
		case (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe:
			return fmt.Sprintf("noncharacter U+%04X at byte %d", r, i)
		}
		i += size
	}
	return ""
}

func checkString(s string) string { return CheckString(s) }
