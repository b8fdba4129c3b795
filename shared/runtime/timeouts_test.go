package runtime_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/runtime"
)

// slowClientLimit is the server's read and idle limit in these tests; the slow clients below
// trickle one byte a second, far slower than it allows.
const slowClientLimit = 300 * time.Millisecond

// waitClosed reads conn until the server closes it and returns what it sent. The deadline is
// a failsafe for a server that never closes the connection, not a timing assertion.
func waitClosed(t *testing.T, conn net.Conn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the slow connection open (read so far: %q)", got)
	}
	return string(got)
}

// trickle writes b one byte a second until it is written, a write fails or stop is closed.
func trickle(conn net.Conn, b string, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < len(b); i++ {
		if _, err := conn.Write([]byte{b[i]}); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

func dial(t *testing.T, url string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Slow clients are cut off at the limits set through Deps (a body trickled after the header,
// a header trickled, a kept-alive connection left idle), while other clients are served.
func TestSlowClientsAreCutOff(t *testing.T) {
	bodyRead := make(chan error, 1)
	entered := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		_, err := io.ReadAll(r.Body)
		bodyRead <- err
		if err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	b := setup(t, runtime.Function{Name: "slow", HTTP: mux}, runtime.Deps{
		ReadHeaderTimeout: slowClientLimit, ReadTimeout: slowClientLimit, IdleTimeout: slowClientLimit,
	})
	stop := make(chan struct{})
	var trickling sync.WaitGroup
	t.Cleanup(func() { close(stop); trickling.Wait() })

	get := func() {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		resp, err := client.Get(b.url + "/ok")
		if err != nil {
			t.Fatalf("another client: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("another client: status %d", resp.StatusCode)
		}
	}

	// A body trickled after a complete header.
	slowBody := dial(t, b.url)
	if _, err := io.WriteString(slowBody, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	trickling.Go(func() { trickle(slowBody, strings.Repeat("b", 100), stop) })
	<-entered // the server is reading the body now
	get()
	if err := <-bodyRead; err == nil {
		t.Fatal("the handler read the whole trickled body")
	}
	if got := waitClosed(t, slowBody); strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("the trickled request succeeded: %q", got)
	}

	// A header trickled.
	slowHeader := dial(t, b.url)
	trickling.Go(func() {
		trickle(slowHeader, "GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("h", 100)+"\r\n\r\n", stop)
	})
	get()
	if got := waitClosed(t, slowHeader); strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("the trickled header was served: %q", got)
	}

	// A kept-alive connection left idle after one request.
	idle := dial(t, b.url)
	if _, err := io.WriteString(idle, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request on the kept-alive connection: %d, close=%v", resp.StatusCode, resp.Close)
	}
	get()
	if err := idle.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %d bytes, %v; want it closed by the server", n, err)
	}
}
