package ssrf

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// inetAton is an independent oracle: glibc's inet_aton, which reads 1 to 4 dot-separated
// numbers in decimal, octal (leading 0) or hex (0x). Any host it reads as an address must be
// refused by CheckURL, whatever the address.
func inetAton(h string) bool {
	h = strings.TrimSuffix(h, ".")
	parts := strings.Split(h, ".")
	if len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		digits, base := p, 10
		switch {
		case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
			digits, base = p[2:], 16
		case len(p) >= 2 && p[0] == '0':
			digits, base = p[1:], 8
		}
		if digits == "" && base != 16 {
			return false
		}
		for _, ch := range strings.ToLower(digits) {
			if strings.IndexRune("0123456789abcdef"[:base], ch) < 0 {
				return false
			}
		}
	}
	return true
}

// oracleBlocked judges an address with netip's own predicates and the embeddings decoded
// here, independently of Blocked's tables (a subset: whatever it flags must be refused).
func oracleBlocked(a netip.Addr) bool {
	a = a.Unmap()
	bad := func(v4 netip.Addr) bool {
		return v4.IsLoopback() || v4.IsPrivate() || v4.IsLinkLocalUnicast() || v4.IsMulticast() ||
			v4.IsUnspecified() || netip.MustParsePrefix("100.64.0.0/10").Contains(v4) ||
			netip.MustParsePrefix("240.0.0.0/4").Contains(v4) || netip.MustParsePrefix("0.0.0.0/8").Contains(v4)
	}
	if a.Is4() {
		return bad(a)
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() || a.Zone() != "" {
		return true
	}
	b := a.As16()
	v4 := func(i int, x byte) netip.Addr {
		return netip.AddrFrom4([4]byte{b[i] ^ x, b[i+1] ^ x, b[i+2] ^ x, b[i+3] ^ x})
	}
	switch {
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b: // NAT64 (both prefixes)
		return bad(v4(12, 0))
	case b[0] == 0x20 && b[1] == 0x02:
		return bad(v4(2, 0))
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		return bad(v4(4, 0)) || bad(v4(12, 0xff))
	case b[0]&0xe0 != 0x20: // outside 2000::/3
		return true
	}
	return false
}

func FuzzCheckURL(f *testing.F) {
	for _, tc := range corpus(newRecorder(), 8080, &allowedServer{ap: netip.MustParseAddrPort("127.0.0.1:9")}) {
		f.Add(tc.url)
	}
	for _, s := range []string{"https://example.com/", "http://93.184.215.14:8080/x", "https://[2606:4700::1111]/"} {
		f.Add(s)
	}
	c, err := NewClient(Config{AllowHTTP: true, Ports: []uint16{8080}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		err = c.CheckURL(u)
		if err != nil {
			var r *Refused
			if !errors.As(err, &r) || r.Reason == "" {
				t.Fatalf("%q: %v is not a *Refused with a reason", raw, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil {
			t.Fatalf("%q accepted: scheme %q, userinfo %v", raw, u.Scheme, u.User)
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil {
			if _, blocked := Blocked(a); blocked || oracleBlocked(a) {
				t.Fatalf("%q accepted with refused address %s", raw, a)
			}
			return
		}
		if inetAton(host) {
			t.Fatalf("%q accepted: inet_aton reads host %q as an address", raw, host)
		}
		if lh := strings.ToLower(strings.TrimSuffix(host, ".")); lh == "localhost" || strings.HasSuffix(lh, ".localhost") {
			t.Fatalf("%q accepted: localhost", raw)
		}
	})
}

// FuzzBlocked: every 16-byte address Blocked lets through is one the oracle lets through, and
// an IPv4 address is judged the same in its mapped form.
func FuzzBlocked(f *testing.F) {
	for _, b := range blockedV6 {
		f.Add(netip.MustParseAddr(b.addr).AsSlice())
	}
	for _, b := range blockedV4 {
		for _, a := range v4forms(netip.MustParseAddr(b.addr)) {
			f.Add(a.AsSlice())
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		r, blocked := Blocked(a)
		if !blocked && oracleBlocked(a) {
			t.Fatalf("%s allowed, the oracle refuses it", a)
		}
		if blocked && r == "" {
			t.Fatalf("%s blocked without a reason", a)
		}
		if a.Is4() {
			r6, blocked6 := Blocked(netip.AddrFrom16(a.As16()))
			if r6 != r || blocked6 != blocked {
				t.Fatalf("%s: %q/%v, mapped: %q/%v", a, r, blocked, r6, blocked6)
			}
		}
	})
}
