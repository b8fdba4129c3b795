package ssrf

import (
	"fmt"
	"net/netip"
)

// Reason says why a URL or an address was refused. The values are stable strings, fit for
// logs, metrics labels and problem+json details.
type Reason string

// Reasons for a refusal. Address reasons name the range the address (or the IPv4 address
// embedded in it) falls in; see doc.go for the table of ranges and why each is refused.
const (
	ReasonScheme        Reason = "scheme"             // not http or https, or http when it is not allowed
	ReasonUserinfo      Reason = "userinfo"           // user:password@ in the URL
	ReasonHost          Reason = "host"               // empty, malformed, non-ASCII, numeric shorthand (127.1, 0x7f000001), zone
	ReasonPort          Reason = "port"               // a port that is not allowed (443, 80 with AllowHTTP, Config.Ports)
	ReasonLoopback      Reason = "loopback"           // 127/8, ::1, localhost
	ReasonPrivate       Reason = "private"            // RFC 1918, fc00::/7, fec0::/10
	ReasonLinkLocal     Reason = "link-local"         // 169.254/16, fe80::/10
	ReasonMetadata      Reason = "metadata"           // cloud instance metadata (169.254.169.254, fd00:ec2::254, ...)
	ReasonCGNAT         Reason = "cgnat"              // 100.64/10 (RFC 6598 shared address space)
	ReasonMulticast     Reason = "multicast"          // 224/4, ff00::/8
	ReasonUnspecified   Reason = "unspecified"        // 0.0.0.0, ::
	ReasonBroadcast     Reason = "broadcast"          // 255.255.255.255
	ReasonDocumentation Reason = "documentation"      // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
	ReasonBenchmarking  Reason = "benchmarking"       // 198.18/15, 2001:2::/48
	ReasonReserved      Reason = "reserved"           // other special-purpose or unallocated space
	ReasonRedirects     Reason = "too-many-redirects" // more redirects than Config.MaxRedirects
	ReasonNoAddress     Reason = "no-address"         // the host name resolved to no address
)

// Refused is the error for a URL or an address the client will not reach. Use errors.As: the
// client returns it wrapped (in *url.Error from Do, or in *net.OpError from the dialer).
type Refused struct {
	URL    string         // the URL refused (userinfo redacted), or "" when refused while dialing
	Addr   netip.AddrPort // the address refused, when the refusal is about an address (else invalid)
	Reason Reason
}

func (e *Refused) Error() string {
	switch {
	case e.URL != "" && e.Addr.IsValid():
		return fmt.Sprintf("ssrf: refused %s (%s): %s", e.URL, e.Addr, e.Reason)
	case e.URL != "":
		return fmt.Sprintf("ssrf: refused %s: %s", e.URL, e.Reason)
	case e.Addr.IsValid():
		return fmt.Sprintf("ssrf: refused address %s: %s", e.Addr, e.Reason)
	}
	return "ssrf: refused: " + string(e.Reason)
}

// TooLarge is the error for a response whose body is longer than Config.MaxBodyBytes: Do
// returns it when the Content-Length says so, and the response body's Read returns it once the
// limit is passed (the bytes up to the limit are delivered first).
type TooLarge struct {
	URL   string
	Limit int64
}

func (e *TooLarge) Error() string {
	return fmt.Sprintf("ssrf: response body of %s exceeds %d bytes", e.URL, e.Limit)
}
