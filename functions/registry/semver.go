package main

import "strings"

// semverLess reports whether version a precedes b by Semantic Versioning 2.0.0 §11: major,
// minor and patch compared numerically; a pre-release precedes its release; pre-release
// identifiers compared one by one (numeric ones numerically and below alphanumeric ones, which
// compare in ASCII order; a shorter list of equal identifiers precedes a longer one); build
// metadata ignored. A version that does not parse is never less nor greater (the manifest
// schema admits only valid ones).
func semverLess(a, b string) bool { return semverCompare(a, b) < 0 }

func semverCompare(a, b string) int {
	ca, pa, oka := splitSemver(a)
	cb, pb, okb := splitSemver(b)
	if !oka || !okb {
		return 0
	}
	for i := range 3 {
		if c := numCompare(ca[i], cb[i]); c != 0 {
			return c
		}
	}
	switch {
	case pa == nil && pb == nil:
		return 0
	case pa == nil:
		return 1
	case pb == nil:
		return -1
	}
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, y := pa[i], pb[i]
		nx, ny := numeric(x), numeric(y)
		var c int
		switch {
		case nx && ny:
			c = numCompare(x, y)
		case nx:
			c = -1
		case ny:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(pa) < len(pb):
		return -1
	case len(pa) > len(pb):
		return 1
	}
	return 0
}

// splitSemver returns the three numbers and the pre-release identifiers (nil: none).
func splitSemver(v string) (core [3]string, pre []string, ok bool) {
	v, _, _ = strings.Cut(v, "+")
	v, p, hasPre := strings.Cut(v, "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return core, nil, false
	}
	for i, s := range parts {
		if !numeric(s) || (len(s) > 1 && s[0] == '0') {
			return core, nil, false
		}
		core[i] = s
	}
	if hasPre {
		pre = strings.Split(p, ".")
		for _, id := range pre {
			if id == "" {
				return core, nil, false
			}
		}
	}
	return core, pre, true
}

func numeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numCompare compares decimal strings of any length (no overflow on 99999999999999999999).
func numCompare(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b) // equal lengths: decimal order is byte order
}
