package ssrf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Describe names the cause in a few words and never the URL or the address.
func TestDescribe(t *testing.T) {
	const secretURL = "https://api.example.com/health?token=s3cret"
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: secretURL, Err: err} }
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{wrap(&Refused{URL: secretURL, Addr: netip.MustParseAddrPort("10.0.0.1:443"), Reason: ReasonPrivate}), "refused by the SSRF rules: private"},
		{wrap(&TooLarge{URL: secretURL, Limit: 4096}), "body over 4096 bytes"},
		{wrap(context.DeadlineExceeded), "timeout: no complete answer within 10s"},
		{wrap(context.Canceled), "cancelled"},
		{wrap(&net.DNSError{Name: "api.example.com", Err: "no such host", IsNotFound: true}), "DNS: no such host"},
		{wrap(&net.DNSError{Name: "api.example.com", Err: "server misbehaving"}), "DNS: lookup failed"},
		{wrap(&net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connect: %w", syscall.ECONNREFUSED)}), "connection refused"},
		{wrap(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), "connection reset"},
		{wrap(io.ErrUnexpectedEOF), "connection closed before a complete answer"},
		{wrap(errors.New("something else at " + secretURL)), "request failed"},
	}
	for _, c := range cases {
		got := Describe(c.err, 10*time.Second)
		if got != c.want {
			t.Errorf("Describe(%v) = %q, want %q", c.err, got, c.want)
		}
		if strings.Contains(got, "example.com") || strings.Contains(got, "s3cret") || strings.Contains(got, "10.0.0.1") {
			t.Errorf("Describe(%v) = %q repeats the URL or the address", c.err, got)
		}
	}
}
