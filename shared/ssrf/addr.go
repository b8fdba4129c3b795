package ssrf

import (
	"net/netip"
)

type rule struct {
	prefix netip.Prefix
	reason Reason
}

func rules(r ...any) []rule {
	out := make([]rule, 0, len(r)/2)
	for i := 0; i < len(r); i += 2 {
		out = append(out, rule{netip.MustParsePrefix(r[i].(string)), r[i+1].(Reason)})
	}
	return out
}

// First match wins, so specific entries (metadata, broadcast) come before the ranges holding them.
var (
	v4Rules = rules(
		"169.254.169.254/32", ReasonMetadata, // AWS, GCP, Azure, OCI, DigitalOcean, ...
		"169.254.170.2/32", ReasonMetadata, // AWS ECS task metadata
		"100.100.100.200/32", ReasonMetadata, // Alibaba Cloud
		"192.0.0.192/32", ReasonMetadata, // Oracle Cloud (legacy)
		"0.0.0.0/32", ReasonUnspecified,
		"0.0.0.0/8", ReasonReserved, // "this network" (RFC 1122); Linux connects 0.x to the host itself
		"10.0.0.0/8", ReasonPrivate,
		"100.64.0.0/10", ReasonCGNAT,
		"127.0.0.0/8", ReasonLoopback,
		"169.254.0.0/16", ReasonLinkLocal,
		"172.16.0.0/12", ReasonPrivate,
		"192.0.0.0/24", ReasonReserved, // IETF protocol assignments (RFC 6890), incl. DS-Lite and NAT64 discovery
		"192.0.2.0/24", ReasonDocumentation, // TEST-NET-1
		"192.88.99.0/24", ReasonReserved, // deprecated 6to4 relay anycast (RFC 7526)
		"192.168.0.0/16", ReasonPrivate,
		"198.18.0.0/15", ReasonBenchmarking, // RFC 2544
		"198.51.100.0/24", ReasonDocumentation, // TEST-NET-2
		"203.0.113.0/24", ReasonDocumentation, // TEST-NET-3
		"224.0.0.0/4", ReasonMulticast,
		"255.255.255.255/32", ReasonBroadcast,
		"240.0.0.0/4", ReasonReserved, // class E, never routed
	)
	v6Rules = rules(
		"fd00:ec2::254/128", ReasonMetadata, // AWS IMDS over IPv6
		"2001:db8::/32", ReasonDocumentation,
		"2001:2::/48", ReasonBenchmarking, // RFC 5180
		"3fff::/20", ReasonDocumentation, // RFC 9637
		"fc00::/7", ReasonPrivate, // unique local (RFC 4193)
		"fe80::/10", ReasonLinkLocal,
		"fec0::/10", ReasonPrivate, // deprecated site-local (RFC 3879)
		"ff00::/8", ReasonMulticast,
	)
	pfxCompat     = netip.MustParsePrefix("::/96")          // IPv4-compatible, deprecated (RFC 4291 2.5.5.1)
	pfxNAT64      = netip.MustParsePrefix("64:ff9b::/96")   // well-known NAT64 (RFC 6052)
	pfxNAT64Local = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
	pfxTeredo     = netip.MustParsePrefix("2001::/32")      // Teredo (RFC 4380)
	pfxIETF       = netip.MustParsePrefix("2001::/23")      // IETF protocol assignments (RFC 2928)
	pfx6to4       = netip.MustParsePrefix("2002::/16")      // 6to4 (RFC 3056)
	pfxGlobal     = netip.MustParsePrefix("2000::/3")       // the only IPv6 space allocated for global unicast
)

// Blocked reports whether addr is an address the client refuses to connect to, and why.
// IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo addresses are judged by the IPv4
// addresses they carry. An address with a zone is always blocked. Blocked does not know
// Config.Allow; the client consults the allow list before calling it.
func Blocked(addr netip.Addr) (Reason, bool) {
	if !addr.IsValid() {
		return ReasonHost, true
	}
	bare := addr.WithZone("")
	var r Reason
	var blocked bool
	switch {
	case bare.Is4():
		r, blocked = blocked4(bare)
	case bare.Is4In6():
		r, blocked = blocked4(bare.Unmap())
	default:
		r, blocked = blocked6(bare)
	}
	if !blocked && addr.Zone() != "" {
		return ReasonHost, true
	}
	return r, blocked
}

func blocked4(a netip.Addr) (Reason, bool) {
	for _, r := range v4Rules {
		if r.prefix.Contains(a) {
			return r.reason, true
		}
	}
	return "", false
}

// v4At returns the IPv4 address in bytes [i, i+4) of a 16-byte address, xored with mask.
func v4At(b [16]byte, i int, mask byte) netip.Addr {
	return netip.AddrFrom4([4]byte{b[i] ^ mask, b[i+1] ^ mask, b[i+2] ^ mask, b[i+3] ^ mask})
}

// embedded judges an address by the IPv4 address it carries: blocked when that is, and
// otherwise blocked with fallback unless fallback is "".
func embedded(v4 netip.Addr, fallback Reason) (Reason, bool) {
	if r, blocked := blocked4(v4); blocked {
		return r, true
	}
	return fallback, fallback != ""
}

func blocked6(a netip.Addr) (Reason, bool) {
	switch a {
	case netip.IPv6Unspecified():
		return ReasonUnspecified, true
	case netip.IPv6Loopback():
		return ReasonLoopback, true
	}
	b := a.As16()
	for _, r := range v6Rules {
		if r.prefix.Contains(a) {
			return r.reason, true
		}
	}
	switch {
	case pfxCompat.Contains(a):
		// Never routed today; an old stack may still turn ::127.0.0.1 into 127.0.0.1.
		return embedded(v4At(b, 12, 0), ReasonReserved)
	case pfxNAT64.Contains(a):
		// The NAT64 gateway connects to the IPv4 address in the last 32 bits.
		return embedded(v4At(b, 12, 0), "")
	case pfxNAT64Local.Contains(a):
		// Local-use prefixes translate as the local network decides (any RFC 6052 length), so
		// no embedded address can be trusted to be public.
		return embedded(v4At(b, 12, 0), ReasonReserved)
	case pfxTeredo.Contains(a):
		// Bits 32-63 are the Teredo server, bits 96-127 the client's address, inverted.
		if r, blocked := embedded(v4At(b, 4, 0), ""); blocked {
			return r, true
		}
		return embedded(v4At(b, 12, 0xff), "")
	case pfxIETF.Contains(a):
		return ReasonReserved, true
	case pfx6to4.Contains(a):
		// Bits 16-47 are the IPv4 address of the 6to4 site.
		return embedded(v4At(b, 2, 0), "")
	case !pfxGlobal.Contains(a):
		return ReasonReserved, true
	}
	return "", false
}
