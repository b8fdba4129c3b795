package main

import (
	"context"

	"github.com/myscrollr/connect/shared/conformance"
	"github.com/myscrollr/connect/shared/manifest"
	"github.com/myscrollr/connect/shared/ssrf"
)

// conformanceChecker runs shared/conformance's checks through the SSRF-safe client.
type conformanceChecker struct {
	client *ssrf.Client
	opts   conformance.Options
}

// NewChecker returns the automated checks as configured: SSRF_ALLOW exempts destinations (make
// dev: 127.0.0.1/32), MANIFEST_ALLOW_LOOPBACK_HTTP accepts http on 127.0.0.1, and
// CHECK_HEALTH_THRESHOLD is the response time benchmark. The run as a whole is bounded by the
// context the registry gives it (CHECK_TIMEOUT).
func NewChecker(cfg Config) (Checker, error) {
	client, err := ssrf.NewClient(ssrf.Config{Allow: cfg.Allow})
	if err != nil {
		return nil, err
	}
	return conformanceChecker{client: client, opts: conformance.Options{
		HealthThreshold:   cfg.CheckHealthThreshold,
		AllowLoopbackHTTP: cfg.AllowLoopbackHTTP,
	}}, nil
}

// Check implements Checker.
func (c conformanceChecker) Check(ctx context.Context, m *manifest.Manifest) []conformance.Result {
	return conformance.Run(ctx, c.client, m, c.opts)
}
