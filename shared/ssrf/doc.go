// Package ssrf is the HTTP client for URLs that third parties control: every outbound call to
// an integration (registration checks, health probes, polls, lifecycle deliveries) goes
// through it, so a hostile or careless integration cannot make the platform reach its own
// network, the cloud metadata service, or anything but a public https endpoint.
//
// Get one with [NewClient]; it returns a [*Client] with no exported fields and no accessor
// for its transport, so the checks cannot be skipped by swapping the transport or the
// redirect policy. Callers use [Client.Do] or [Client.Get]; [Client.CheckURL] checks a URL
// without a request (for validating a manifest at registration).
//
// # What is checked, and where
//
//  1. The URL (the first request and every redirect, in Do, CheckRedirect and the transport):
//     scheme http or https only (file:, gopher:, ftp:, data: ... are refused), http only with
//     Config.AllowHTTP; no userinfo; a strict host: an IPv6 literal in brackets without a zone,
//     a dotted-quad IPv4 literal, or an ASCII DNS name whose last label is not a number. The
//     last rule refuses every shorthand that inet_aton or browsers read as an address (127.1,
//     0x7f000001, 2130706433, 0177.0.0.1), so such a host never reaches a resolver; names under
//     localhost are refused as loopback. The port must be 443, 80 with AllowHTTP, or one of
//     Config.Ports (strict decimal, no leading zeros). A literal address is judged by [Blocked].
//  2. The socket (the dial hook, net.Dialer.Control): the client resolves a name itself and
//     dials each address; the hook runs after the socket is created and before it connects,
//     with the address the kernel will connect to, and refuses it by [Blocked] and the port
//     rules. What is checked is what is dialed, so DNS rebinding (a public answer for the
//     check, a private one for the connection) cannot work, and a resolver that treats odd
//     names as addresses cannot smuggle one in.
//  3. Redirects: at most Config.MaxRedirects (default and ceiling 5), each URL checked as in 1
//     and each connection as in 2. Authorization, Proxy-Authorization and Cookie are dropped
//     when a redirect leaves the original origin (scheme, host, port); net/http alone would
//     keep them for subdomains and other ports.
//  4. Limits: dial (over all of a name's addresses), TLS handshake, response header wait and
//     whole-call time; response header bytes; body bytes (the body's Read fails with
//     [*TooLarge] past the limit, and Do fails at once when Content-Length exceeds it).
//     Proxy settings from the environment are ignored (Transport.Proxy is nil): a proxy would
//     connect on our behalf to an address we never checked.
//
// Refusals are [*Refused] values carrying the URL, the address when there is one, and a
// [Reason]; find them with errors.As.
//
// # Refused address ranges
//
// IPv4 (IANA special-purpose registry): 0.0.0.0 (unspecified) and 0/8 ("this network",
// reserved); 10/8, 172.16/12, 192.168/16 (private); 100.64/10 (CGNAT); 127/8 (loopback);
// 169.254/16 (link-local); 192.0.0/24 (IETF protocol assignments, reserved); 192.0.2/24,
// 198.51.100/24, 203.0.113/24 (documentation); 192.88.99/24 (deprecated 6to4 relay, reserved);
// 198.18/15 (benchmarking); 224/4 (multicast); 240/4 (reserved); 255.255.255.255 (broadcast).
// Metadata services get their own reason: 169.254.169.254, 169.254.170.2 (ECS),
// 100.100.100.200 (Alibaba), 192.0.0.192 (Oracle), fd00:ec2::254 (AWS IPv6). Globally
// reachable special ranges (AS112 192.31.196/24 and 192.175.48/24, AMT 192.52.193/24) are
// not refused: they are public.
//
// IPv6: :: and ::1; fc00::/7 and the deprecated site-local fec0::/10 (private); fe80::/10
// (link-local); ff00::/8 (multicast); 2001:db8::/32 and 3fff::/20 (documentation); 2001:2::/48
// (benchmarking); the rest of 2001::/23 (IETF protocol assignments: ORCHID, AMT, PCP and TURN
// anycast; nothing an integration is hosted on) and everything outside 2000::/3 (not
// allocated for global unicast, e.g. 100::/64 discard, 5f00::/16 SRv6) as reserved.
// Addresses that carry an IPv4 address are judged by it: IPv4-mapped ::ffff:0:0/96 (the
// dialer connects to the IPv4 address), IPv4-compatible ::/96 (deprecated; refused even with
// a public IPv4 inside), NAT64 64:ff9b::/96 (the gateway connects to the last 32 bits),
// local-use NAT64 64:ff9b:1::/48 (refused always: the local network decides how it
// translates), 6to4 2002::/16 (bits 16-47) and Teredo 2001::/32 (the server, bits 32-63, and
// the client, bits 96-127 inverted; both must be public).
//
// # Local development
//
// Config.Allow exempts listed destinations (a prefix, optionally one port) from every check,
// including scheme and port when the URL's host is that literal address. It is how `make dev`
// lets functions reach the demo integrations on 127.0.0.1 over http: the proposed environment
// variable is SSRF_ALLOW ([EnvAllow], parsed by [ParseAllow]), e.g. SSRF_ALLOW=127.0.0.1/32.
// Production leaves it unset. A /0 prefix is refused by validation.
//
// # Tests
//
// Network tests talk only to loopback. A corpus of about 500 refused URLs (per canary port)
// runs against TCP canary listeners on 127.0.0.1 and ::1 with plain http and the canary ports
// allowed, so only the address checks stand between a request and a canary; the canaries
// must accept nothing. Names are answered by a stub resolver, and a test hook stops any
// non-loopback connection after the checks passed and records it, so public cases are shown
// to be dialed without leaving the machine. FuzzCheckURL holds CheckURL to independent
// oracles (inet_aton's number forms, netip's predicates and the embeddings decoded anew).
package ssrf
