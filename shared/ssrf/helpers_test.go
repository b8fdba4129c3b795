package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// canaries are TCP listeners on loopback that count the connections they accept. No test may
// make one accept.
type canaries struct {
	ports   []uint16
	v6port  uint16 // a listener on [::1], 0 when the machine has no IPv6 loopback
	accepts atomic.Int64
}

func startCanaries(t *testing.T, n int) *canaries {
	t.Helper()
	c := &canaries{}
	listen := func(network, addr string) (uint16, bool) {
		ln, err := net.Listen(network, addr)
		if err != nil {
			return 0, false
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				c.accepts.Add(1)
				conn.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		return uint16(ln.Addr().(*net.TCPAddr).Port), true
	}
	for range n {
		p, ok := listen("tcp4", "127.0.0.1:0")
		if !ok {
			t.Fatal("cannot listen on 127.0.0.1")
		}
		c.ports = append(c.ports, p)
	}
	c.v6port, _ = listen("tcp6", "[::1]:0")
	return c
}

func (c *canaries) allPorts() []uint16 {
	if c.v6port != 0 {
		return append([]uint16{c.v6port}, c.ports...)
	}
	return c.ports
}

// errNoConnect is what the recording hook returns instead of connecting to a non-loopback
// address that passed the checks.
var errNoConnect = errors.New("test: would connect here (not connecting)")

// recorder stubs the resolver and records every address that passed the dial-time check.
// Only loopback addresses (which pass only when Config.Allow lets them) are really connected.
type recorder struct {
	mu       sync.Mutex
	names    map[string][]netip.Addr
	resolver func(host string) []netip.Addr // when set, answers names not in names
	lookups  int
	dialed   []netip.AddrPort
}

func newRecorder() *recorder { return &recorder{names: map[string][]netip.Addr{}} }

func (r *recorder) add(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range addrs {
		r.names[host] = append(r.names[host], netip.MustParseAddr(a))
	}
}

func (r *recorder) hooks() hooks {
	return hooks{
		lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.lookups++
			if a, ok := r.names[host]; ok {
				return a, nil
			}
			if r.resolver != nil {
				return r.resolver(host), nil
			}
			return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
		},
		afterCheck: func(ap netip.AddrPort) error {
			if ap.Addr().Unmap().IsLoopback() {
				return nil
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.dialed = append(r.dialed, ap)
			return errNoConnect
		},
	}
}

func (r *recorder) attempts() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]netip.AddrPort(nil), r.dialed...)
}

// allowedServer is a loopback test server whose exact address is in the client's Allow list.
type allowedServer struct {
	*httptest.Server
	ap   netip.AddrPort
	hits atomic.Int64
}

func startAllowed(t *testing.T, h http.Handler) *allowedServer {
	t.Helper()
	s := &allowedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	s.ap = netip.MustParseAddrPort(s.Listener.Addr().String())
	return s
}

func (s *allowedServer) dest() Destination {
	return Destination{Prefix: netip.PrefixFrom(s.ap.Addr(), 32), Port: s.ap.Port()}
}

func (s *allowedServer) url(path string) string { return fmt.Sprintf("http://%s%s", s.ap, path) }

func mustClient(t testing.TB, cfg Config, h hooks) *Client {
	t.Helper()
	c, err := newClient(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get fetches u and reads the body, returning the status code (0 on error).
func get(c *Client, u string) (int, error) {
	resp, err := c.Get(context.Background(), u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	return resp.StatusCode, nil
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
