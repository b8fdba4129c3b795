package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// startStripe runs stripe-mock (pinned as a Go tool in infra/local/go.mod) unless an external
// Stripe API is configured. stripe-mock gets both its HTTP and HTTPS address on 127.0.0.1.
func (s *Stack) startStripe(ctx context.Context) error {
	if s.cfg.StripeAPIBase != "" {
		s.StripeAPIBase = s.cfg.StripeAPIBase
		return nil
	}
	host, portStr, err := net.SplitHostPort(s.cfg.StripeMockAddr)
	if err != nil {
		return fmt.Errorf("stack: STRIPE_MOCK_ADDR %q: %w", s.cfg.StripeMockAddr, err)
	}
	port, _ := strconv.Atoi(portStr)
	httpsPort := port + 1
	if port == 0 {
		if port, err = freePort(); err != nil {
			return err
		}
		if httpsPort, err = freePort(); err != nil {
			return err
		}
	}
	httpAddr := net.JoinHostPort(host, strconv.Itoa(port))
	httpsAddr := net.JoinHostPort(host, strconv.Itoa(httpsPort))
	base := "http://" + httpAddr
	p, err := startProcess("stripe-mock", base, base+"/v1/customers", filepath.Join(s.workDir, "bin", "stripe-mock"),
		[]string{"-http-addr", httpAddr, "-https-addr", httpsAddr}, os.Environ(), nil, s.log)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	if err := p.waitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	s.StripeAPIBase = base
	return nil
}
