package ssrf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testBodyLimit = 1 << 20

// allocated returns the bytes allocated (by the whole process) while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// memBound is generous against the 1 MiB limit, and far below what buffering the bodies
// these servers offer (10 GiB, or endless) would take.
const memBound = 16 << 20

func TestBodyLimit(t *testing.T) {
	var sent atomic.Int64
	chunk := make([]byte, 32<<10)
	srv := startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/declared" {
			w.Header().Set("Content-Length", fmt.Sprint(int64(10)<<30)) // 10 GiB
		}
		if r.URL.Path == "/exact" {
			w.Write(chunk[:testBodyLimit%len(chunk)])
			for range testBodyLimit / len(chunk) {
				w.Write(chunk)
			}
			return
		}
		for { // endless (up to 10 GiB), until the client goes away
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil || sent.Load() >= 10<<30 {
				return
			}
		}
	}))
	c := mustClient(t, Config{Allow: []Destination{srv.dest()}, MaxBodyBytes: testBodyLimit}, hooks{})

	t.Run("declared 10 GiB", func(t *testing.T) {
		var err error
		n := allocated(func() { _, err = get(c, srv.url("/declared")) })
		var tl *TooLarge
		if !errors.As(err, &tl) || tl.Limit != testBodyLimit {
			t.Fatalf("got %v, want *TooLarge", err)
		}
		if n > memBound {
			t.Errorf("allocated %d bytes, want < %d", n, memBound)
		}
	})
	t.Run("endless stream", func(t *testing.T) {
		var body []byte
		var err error
		n := allocated(func() {
			resp, gerr := c.Get(t.Context(), srv.url("/stream"))
			if gerr != nil {
				err = gerr
				return
			}
			defer resp.Body.Close()
			body, err = io.ReadAll(resp.Body) // what a careless caller does
		})
		var tl *TooLarge
		if !errors.As(err, &tl) {
			t.Fatalf("got %v, want *TooLarge", err)
		}
		if len(body) != testBodyLimit {
			t.Errorf("read %d bytes, want exactly the limit %d", len(body), testBodyLimit)
		}
		if n > memBound {
			t.Errorf("allocated %d bytes, want < %d", n, memBound)
		}
		t.Logf("stream cut at %d bytes; %d bytes allocated", len(body), n)
	})
	t.Run("exactly the limit", func(t *testing.T) {
		resp, err := c.Get(t.Context(), srv.url("/exact"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || len(body) != testBodyLimit {
			t.Errorf("read %d bytes, %v; want %d and no error", len(body), err, testBodyLimit)
		}
	})
}

// trickleServer answers every connection with header then body, a byte per second after the
// first, until the client goes away or the test ends.
func trickleServer(t *testing.T, header, body string, trickleHeader bool) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for { // read the request header
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		out := body
		if trickleHeader {
			out = header + body
		} else if _, err := io.WriteString(conn, header); err != nil {
			return
		}
		tick := time.NewTicker(time.Second) // the attack under test: 1 byte/s
		defer tick.Stop()
		for i := 0; i < len(out); i++ {
			if _, err := conn.Write([]byte{out[i]}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func timeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTrickle(t *testing.T) {
	body := strings.Repeat("x", 100)
	header := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
	t.Run("header", func(t *testing.T) {
		ap := trickleServer(t, header, body, true)
		c := mustClient(t, Config{Allow: []Destination{{Prefix: netip.PrefixFrom(ap.Addr(), 32), Port: ap.Port()}},
			ResponseHeaderTimeout: 300 * time.Millisecond, Timeout: time.Minute}, hooks{})
		var err error
		n := allocated(func() { _, err = get(c, fmt.Sprintf("http://%s/", ap)) })
		if err == nil || !timeoutErr(err) {
			t.Fatalf("got %v, want a response header timeout", err)
		}
		if n > memBound {
			t.Errorf("allocated %d bytes", n)
		}
	})
	t.Run("body", func(t *testing.T) {
		ap := trickleServer(t, header, body, false)
		c := mustClient(t, Config{Allow: []Destination{{Prefix: netip.PrefixFrom(ap.Addr(), 32), Port: ap.Port()}},
			Timeout: 500 * time.Millisecond}, hooks{})
		resp, err := c.Get(t.Context(), fmt.Sprintf("http://%s/", ap))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err == nil || !timeoutErr(err) || len(got) >= len(body) {
			t.Fatalf("read %d bytes, %v; want cut off by the total timeout", len(got), err)
		}
	})
}

func TestRedirectLoop(t *testing.T) {
	srv := startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	}))
	c := mustClient(t, Config{Allow: []Destination{srv.dest()}}, hooks{})
	var err error
	n := allocated(func() { _, err = get(c, srv.url("/loop")) })
	var r *Refused
	if !errors.As(err, &r) || r.Reason != ReasonRedirects {
		t.Fatalf("got %v, want refused %q", err, ReasonRedirects)
	}
	if got := srv.hits.Load(); got != DefaultMaxRedirects+1 {
		t.Errorf("hits = %d, want %d (the request and %d redirects)", got, DefaultMaxRedirects+1, DefaultMaxRedirects)
	}
	if n > memBound {
		t.Errorf("allocated %d bytes", n)
	}
}

func TestHeaderLimit(t *testing.T) {
	srv := startAllowed(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("a", 64<<10))
	}))
	c := mustClient(t, Config{Allow: []Destination{srv.dest()}, MaxHeaderBytes: 4 << 10}, hooks{})
	_, err := get(c, srv.url("/"))
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "exceeded") {
		t.Fatalf("got %v, want the header limit error", err)
	}
}
