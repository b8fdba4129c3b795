// Package clip shortens text for logs, error messages and bounded columns without cutting a
// UTF-8 character in half (PostgreSQL refuses invalid UTF-8 in text, and a log line with half a
// character is garbled).
package clip

import "unicode/utf8"

// String returns s cut to at most n bytes, at a character boundary.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// Ellipsis is String followed by "…" when s was longer than n bytes.
func Ellipsis(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return String(s, n) + "…"
}
