package ssrf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Describe says briefly why a call through the client failed, in words fit to show the
// integration's developer and to store: "refused by the SSRF rules: private", "timeout: no
// complete answer within 10s", "connection refused", "TLS: certificate not valid for the host",
// "body over 4096 bytes" ... It never repeats the URL (which may carry a token) or an address,
// as the errors' own texts (*url.Error, *net.OpError) would. timeout is the bound the caller
// set, named in the timeout reason.
func Describe(err error, timeout time.Duration) string {
	var refused *Refused
	var tooLarge *TooLarge
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &refused):
		return "refused by the SSRF rules: " + string(refused.Reason)
	case errors.As(err, &tooLarge):
		return fmt.Sprintf("body over %d bytes", tooLarge.Limit)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout: no complete answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "DNS: no such host"
		}
		return "DNS: lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return "TLS: certificate not valid for the host"
	case errors.As(err, &recordErr):
		return "TLS: the server did not answer TLS"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before a complete answer"
	}
	return "request failed"
}
