package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// maxDialAddrs bounds how many of a name's addresses are tried.
const maxDialAddrs = 8

// Client is the HTTP client for third-party URLs. It has no exported fields and gives out no
// transport, so the checks cannot be bypassed by swapping one; build it with NewClient. It is
// safe for concurrent use.
type Client struct {
	cfg    Config
	hc     http.Client
	base   *http.Transport
	dialer net.Dialer
	hooks  hooks
}

// hooks are the test seams: tests resolve names without DNS and stop connections to
// non-loopback addresses after the checks passed.
type hooks struct {
	// lookup resolves a host name; nil uses net.DefaultResolver.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// afterCheck runs in the dial hook after the address was accepted, before connect(2).
	afterCheck func(netip.AddrPort) error
}

// NewClient returns a client for cfg, or an error naming the first invalid field.
func NewClient(cfg Config) (*Client, error) { return newClient(cfg, hooks{}) }

func newClient(cfg Config, h hooks) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg.withDefaults(), hooks: h}
	c.dialer = net.Dialer{Control: c.control, KeepAlive: 30 * time.Second}
	c.base = &http.Transport{
		Proxy:                  nil, // never HTTP(S)_PROXY from the environment
		DialContext:            c.dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.cfg.RootCAs},
		TLSHandshakeTimeout:    c.cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  c.cfg.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: c.cfg.MaxHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
	}
	c.hc = http.Client{
		Transport:     &transport{c: c},
		CheckRedirect: c.checkRedirect,
		Timeout:       c.cfg.Timeout,
	}
	return c, nil
}

// Do sends req after checking its URL; every redirect is checked again and every connection's
// address is checked when dialed. The response body stops with *TooLarge past MaxBodyBytes.
// Refusals are *Refused (use errors.As).
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if err := c.CheckURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return c.hc.Do(req)
}

// Get fetches rawURL with ctx. A URL that does not parse is refused with ReasonHost.
func (c *Client) Get(ctx context.Context, rawURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &Refused{Reason: ReasonHost}
	}
	return c.Do(req)
}

// CloseIdleConnections closes pooled connections.
func (c *Client) CloseIdleConnections() { c.base.CloseIdleConnections() }

func (c *Client) allowed(ap netip.AddrPort) bool {
	for _, d := range c.cfg.Allow {
		if d.contains(ap) {
			return true
		}
	}
	return false
}

func (c *Client) portAllowed(p uint16) bool {
	return p == 443 || (p == 80 && c.cfg.AllowHTTP) || slices.Contains(c.cfg.Ports, p)
}

// checkAddr is the dial-time check of the socket's address.
func (c *Client) checkAddr(ap netip.AddrPort) error {
	if c.allowed(ap) {
		return nil
	}
	if r, blocked := Blocked(ap.Addr()); blocked {
		return &Refused{Addr: ap, Reason: r}
	}
	if !c.portAllowed(ap.Port()) {
		return &Refused{Addr: ap, Reason: ReasonPort}
	}
	return nil
}

// control runs on every socket after it is created and before it connects, with the address
// it will connect to: what is checked is what is dialed, whatever a resolver said before.
func (c *Client) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return &Refused{Reason: ReasonScheme}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &Refused{Reason: ReasonHost}
	}
	if err := c.checkAddr(ap); err != nil {
		return err
	}
	if c.hooks.afterCheck != nil {
		return c.hooks.afterCheck(ap)
	}
	return nil
}

// dial resolves hostport itself (after the strict host check, so numeric shorthands never
// reach a resolver) and dials each address in turn; the control hook checks each socket.
func (c *Client) dial(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, &Refused{Reason: ReasonHost}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, &Refused{Reason: ReasonPort}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if r, ok := checkHostname(host); !ok {
			return nil, &Refused{Reason: r}
		}
		lookup := c.hooks.lookup
		if lookup == nil {
			lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			}
		}
		if addrs, err = lookup(ctx, host); err != nil {
			return nil, err
		}
	}
	if len(addrs) == 0 {
		return nil, &Refused{Reason: ReasonNoAddress}
	}
	if len(addrs) > maxDialAddrs {
		addrs = addrs[:maxDialAddrs]
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var first error
	for i, a := range addrs {
		// Share what is left of the dial budget among the addresses left, as net.Dialer does.
		actx, acancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			actx, acancel = context.WithTimeout(ctx, time.Until(deadline)/time.Duration(len(addrs)-i))
		}
		conn, err := c.dialer.DialContext(actx, network, netip.AddrPortFrom(a, uint16(port)).String())
		acancel()
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if c.cfg.MaxRedirects < 0 {
		return http.ErrUseLastResponse
	}
	if len(via) > c.cfg.MaxRedirects {
		return &Refused{URL: req.URL.Redacted(), Reason: ReasonRedirects}
	}
	if err := c.CheckURL(req.URL); err != nil {
		return err
	}
	// net/http keeps credentials for the same host and its subdomains; we keep them only for
	// the same origin (scheme, host and port).
	if origin(req.URL) != origin(via[0].URL) {
		for _, h := range []string{"Authorization", "Proxy-Authorization", "Cookie"} {
			req.Header.Del(h)
		}
	}
	return nil
}

func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}

// transport checks every request's URL (the first one and each redirect) before the
// http.Transport sees it, and bounds every response body.
type transport struct{ c *Client }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	if err := c.CheckURL(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		var r *Refused
		if errors.As(err, &r) && r.URL == "" {
			return nil, &Refused{URL: req.URL.Redacted(), Addr: r.Addr, Reason: r.Reason}
		}
		return nil, err
	}
	limit := c.cfg.MaxBodyBytes
	if req.Method != http.MethodHead && resp.ContentLength > limit {
		resp.Body.Close()
		return nil, &TooLarge{URL: req.URL.Redacted(), Limit: limit}
	}
	resp.Body = &limitedBody{rc: resp.Body, left: limit, url: req.URL.Redacted(), limit: limit}
	return resp, nil
}

// limitedBody delivers at most limit bytes, then fails with *TooLarge if there are more.
type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
	url   string
	err   error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Read one byte more than is left, to know whether the body goes past the limit.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		b.err = &TooLarge{URL: b.url, Limit: b.limit}
		return n, b.err
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
