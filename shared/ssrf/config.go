package ssrf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// EnvAllow is the environment variable proposed for Config.Allow (parsed by ParseAllow).
// `make dev` sets it to the demo integrations' loopback address; nothing else should.
const EnvAllow = "SSRF_ALLOW"

// Defaults for the zero fields of Config.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 5 * time.Second
	DefaultResponseHeaderTimeout = 10 * time.Second
	DefaultTimeout               = 30 * time.Second
	DefaultMaxHeaderBytes        = 64 << 10
	DefaultMaxBodyBytes          = 10 << 20
	DefaultMaxRedirects          = 5
	// MaxRedirectsLimit is the most redirects a client may be configured to follow.
	MaxRedirectsLimit = 5
)

// Config configures a Client. Its zero value is the production setting: https on port 443 to
// public addresses only, with the default limits.
type Config struct {
	// AllowHTTP permits plain http, and with it port 80. Default: https only.
	AllowHTTP bool

	// Ports are the ports allowed besides 443 (and 80 with AllowHTTP), e.g. 8443.
	Ports []uint16

	// Allow lists destinations exempt from every address, scheme and port check: an address in
	// one of them may be reached over http or https even if it is loopback or private. It is
	// the explicit setting for local development (SSRF_ALLOW=127.0.0.1/32 in `make dev`, see
	// ParseAllow) and for tests; production leaves it empty. The exemption is judged on the
	// dialed address, and for scheme and port on a URL whose host is that literal address: a
	// host name that resolves into Allow is still held to https and the allowed ports.
	Allow []Destination

	// DialTimeout bounds connecting, over all the addresses a name resolves to (default 5s).
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake (default 5s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the complete response header once the request
	// is written (default 10s).
	ResponseHeaderTimeout time.Duration
	// Timeout bounds a whole call: every redirect, and reading the body (default 30s).
	Timeout time.Duration

	// MaxHeaderBytes bounds the response header (default 64 KiB).
	MaxHeaderBytes int64
	// MaxBodyBytes bounds the response body; reading past it fails with *TooLarge (default 10 MiB).
	MaxBodyBytes int64

	// MaxRedirects is how many redirects are followed, at most MaxRedirectsLimit (default 5);
	// a negative value follows none and returns the 3xx response itself.
	MaxRedirects int

	// RootCAs verifies servers' certificates; nil uses the system roots.
	RootCAs *x509.CertPool
}

// Destination is an address prefix, optionally restricted to one port, exempt from the checks.
type Destination struct {
	Prefix netip.Prefix
	Port   uint16 // 0: any port
}

func (d Destination) String() string {
	if d.Port == 0 {
		return d.Prefix.String()
	}
	if d.Prefix.IsSingleIP() {
		return netip.AddrPortFrom(d.Prefix.Addr(), d.Port).String()
	}
	return d.Prefix.String() + " port " + strconv.Itoa(int(d.Port))
}

func (d Destination) contains(ap netip.AddrPort) bool {
	a := ap.Addr()
	if a.Zone() != "" {
		return false
	}
	return d.Prefix.Contains(a.Unmap()) && (d.Port == 0 || d.Port == ap.Port())
}

// ParseAllow parses the SSRF_ALLOW format: comma-separated entries, each a prefix
// (127.0.0.1/32, ::1/128), an address (127.0.0.1, any port) or an address and port
// (127.0.0.1:8081, [::1]:8081). Spaces around entries are ignored; "" is an empty list.
func ParseAllow(s string) ([]Destination, error) {
	var out []Destination
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		d, err := parseDestination(entry)
		if err != nil {
			return nil, fmt.Errorf("ssrf: %s: entry %q: %w", EnvAllow, entry, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseDestination(s string) (Destination, error) {
	if strings.Contains(s, "%") {
		return Destination{}, errors.New("zones are not allowed")
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return Destination{Prefix: p.Masked()}, checkDestination(Destination{Prefix: p})
	}
	if a, err := netip.ParseAddr(s); err == nil {
		d := Destination{Prefix: netip.PrefixFrom(a, a.BitLen())}
		return d, checkDestination(d)
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return Destination{}, errors.New("want a prefix (127.0.0.1/32), an address, or an address and port (127.0.0.1:8081)")
	}
	d := Destination{Prefix: netip.PrefixFrom(ap.Addr(), ap.Addr().BitLen()), Port: ap.Port()}
	return d, checkDestination(d)
}

func checkDestination(d Destination) error {
	switch a := d.Prefix.Addr(); {
	case !d.Prefix.IsValid():
		return errors.New("invalid prefix")
	case a.Zone() != "":
		return errors.New("zones are not allowed")
	case a.Is4In6():
		return errors.New("write IPv4 addresses in dotted form, not IPv4-mapped")
	case d.Prefix.Bits() == 0:
		return errors.New("a /0 prefix would turn the checks off")
	}
	return nil
}

// validate checks the configuration, naming the field that is wrong.
func (c Config) validate() error {
	var errs []error
	field := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ssrf: Config.%s: "+format, append([]any{name}, args...)...))
	}
	for i, p := range c.Ports {
		if p == 0 {
			field("Ports", "[%d] is 0", i)
		}
	}
	for i, d := range c.Allow {
		if err := checkDestination(d); err != nil {
			field("Allow", "[%d] (%s, env %s): %v", i, d, EnvAllow, err)
		}
	}
	for name, v := range map[string]time.Duration{
		"DialTimeout": c.DialTimeout, "TLSHandshakeTimeout": c.TLSHandshakeTimeout,
		"ResponseHeaderTimeout": c.ResponseHeaderTimeout, "Timeout": c.Timeout,
	} {
		if v < 0 {
			field(name, "must not be negative, got %s", v)
		}
	}
	if c.MaxHeaderBytes < 0 {
		field("MaxHeaderBytes", "must not be negative, got %d", c.MaxHeaderBytes)
	}
	if c.MaxBodyBytes < 0 {
		field("MaxBodyBytes", "must not be negative, got %d", c.MaxBodyBytes)
	}
	if c.MaxRedirects > MaxRedirectsLimit {
		field("MaxRedirects", "must be at most %d, got %d", MaxRedirectsLimit, c.MaxRedirects)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.DialTimeout, DefaultDialTimeout)
	def(&c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	def(&c.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	def(&c.Timeout, DefaultTimeout)
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	c.Ports = append([]uint16(nil), c.Ports...)
	c.Allow = append([]Destination(nil), c.Allow...)
	for i := range c.Allow {
		c.Allow[i].Prefix = c.Allow[i].Prefix.Masked()
	}
	return c
}
