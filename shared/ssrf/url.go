package ssrf

import (
	"net/netip"
	"net/url"
	"strings"
)

// CheckURL reports whether the client would request u, without resolving or connecting:
// http or https (http only with AllowHTTP), no userinfo, a strictly parsed host, an allowed
// port, and, for a literal address, an address that is not blocked. A host name passes here
// and its addresses are checked when dialing. The error is a *Refused.
func (c *Client) CheckURL(u *url.URL) error {
	if u == nil {
		return &Refused{Reason: ReasonHost}
	}
	refuse := func(r Reason, ap netip.AddrPort) error {
		return &Refused{URL: u.Redacted(), Addr: ap, Reason: r}
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return refuse(ReasonScheme, netip.AddrPort{})
	}
	if u.User != nil {
		return refuse(ReasonUserinfo, netip.AddrPort{})
	}
	if u.Opaque != "" {
		return refuse(ReasonHost, netip.AddrPort{})
	}
	port, ok := parsePort(u.Port(), scheme)
	if !ok || (u.Port() == "" && strings.HasSuffix(u.Host, ":")) {
		return refuse(ReasonPort, netip.AddrPort{})
	}
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return refuse(ReasonHost, netip.AddrPort{})
		}
		return c.checkLiteral(netip.AddrPortFrom(a, port), scheme, refuse)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return refuse(ReasonHost, netip.AddrPort{})
		}
		return c.checkLiteral(netip.AddrPortFrom(a, port), scheme, refuse)
	}
	if r, ok := checkHostname(host); !ok {
		return refuse(r, netip.AddrPort{})
	}
	return c.checkSchemePort(scheme, port, netip.AddrPort{}, refuse)
}

func (c *Client) checkLiteral(ap netip.AddrPort, scheme string, refuse func(Reason, netip.AddrPort) error) error {
	if c.allowed(ap) {
		return nil
	}
	if r, blocked := Blocked(ap.Addr()); blocked {
		return refuse(r, ap)
	}
	return c.checkSchemePort(scheme, ap.Port(), ap, refuse)
}

func (c *Client) checkSchemePort(scheme string, port uint16, ap netip.AddrPort, refuse func(Reason, netip.AddrPort) error) error {
	if scheme == "http" && !c.cfg.AllowHTTP {
		return refuse(ReasonScheme, ap)
	}
	if !c.portAllowed(port) {
		return refuse(ReasonPort, ap)
	}
	return nil
}

// parsePort parses a URL port strictly: 1 to 65535 in decimal without leading zeros; "" is
// the scheme's default.
func parsePort(s, scheme string) (uint16, bool) {
	if s == "" {
		if scheme == "http" {
			return 80, true
		}
		return 443, true
	}
	if len(s) > 5 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for _, ch := range []byte(s) {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	if n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// checkHostname accepts a DNS name of ASCII letters, digits, hyphens and underscores (at most
// 253 bytes, labels of 1 to 63 bytes not starting or ending with a hyphen, one optional
// trailing dot) whose last label is not a number. The last rule refuses every numeric
// shorthand that some resolvers (inet_aton, browsers' URL parsers) read as an IPv4 address:
// 127.1, 2130706433, 0x7f000001, 0177.0.0.1, 0x7f.1. No top-level domain is numeric. Names
// under localhost (RFC 6761) are refused as loopback without asking a resolver.
func checkHostname(h string) (Reason, bool) {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return ReasonHost, false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return ReasonHost, false
		}
		for _, ch := range []byte(l) {
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return ReasonHost, false
			}
		}
	}
	if numeric(labels[len(labels)-1]) {
		return ReasonHost, false
	}
	if lh := strings.ToLower(h); lh == "localhost" || strings.HasSuffix(lh, ".localhost") {
		return ReasonLoopback, false
	}
	return "", true
}

// numeric reports whether a label is a decimal, octal or hexadecimal number (the forms
// inet_aton and the WHATWG URL standard accept in an IPv4 address).
func numeric(l string) bool {
	digits := l
	hex := false
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		digits, hex = l[2:], true
		if digits == "" {
			return true // "0x" alone is zero to WHATWG
		}
	}
	for _, ch := range []byte(digits) {
		isDigit := ch >= '0' && ch <= '9'
		isHex := ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F'
		if !isDigit && !(hex && isHex) {
			return false
		}
	}
	return true
}
