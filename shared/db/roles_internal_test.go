package db

import (
	"strings"
	"testing"
)

func TestValidRoleName(t *testing.T) {
	for name, want := range map[string]bool{
		"connect_catalog_login": true, "_a": true, "a1": true, strings.Repeat("a", 63): true,
		"": false, "1a": false, "A": false, "a-b": false, "a b": false, "a'": false, "a;": false,
		strings.Repeat("a", 64): false, "é": false, "a\x00": false,
	} {
		if got := validRoleName(name); got != want {
			t.Errorf("validRoleName(%q) = %v, want %v", name, got, want)
		}
	}
}
