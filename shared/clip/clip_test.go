package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 10, "hello"}, {"hello", 5, "hello"}, {"hello", 3, "hel"}, {"hello", 0, ""}, {"hello", -1, ""},
		{"héllo", 2, "h"}, {"héllo", 3, "hé"}, {"日本語", 4, "日"}, {"日本語", 2, ""},
	} {
		if got := String(c.s, c.n); got != c.want {
			t.Errorf("String(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
	if got := Ellipsis("héllo", 2); got != "h…" {
		t.Errorf("Ellipsis = %q", got)
	}
	if got := Ellipsis("hi", 2); got != "hi" {
		t.Errorf("Ellipsis of a short string = %q", got)
	}
}

func FuzzString(f *testing.F) {
	f.Add("héllo wörld", 4)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := String(s, n)
		if len(got) > max(n, 0) || !strings.HasPrefix(s, got) {
			t.Fatalf("String(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("String(%q, %d) = %q cuts a character", s, n, got)
		}
		if len(s) > n && n > 0 && len(got) < n-utf8.UTFMax+1 && utf8.ValidString(s) {
			t.Fatalf("String(%q, %d) = %q cut more than a character's worth", s, n, got)
		}
	})
}
