package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/conformance/health"
	"github.com/myscrollr/connect/shared/ssrf"
)

// maxBodyBytes bounds the body of a health answer: the contract (schemas/json/health.json)
// is a small JSON object; a longer body is a failed check.
const maxBodyBytes = health.MaxBodyBytes

// healthPath is probed below each integration's base_url.
const healthPath = health.Path

// Result is the outcome of one check.
type Result struct {
	// Status is events.HealthHealthy (a 2xx answer in time with an up status),
	// events.HealthDegraded (slower than Config.DegradedAfter, or the integration reported
	// degraded) or events.HealthOffline (anything else).
	Status string
	// HTTPStatus is the answer's status code, 0 when there was none.
	HTTPStatus int
	// Reason says why a check is not healthy, briefly, for the developer ("" when healthy).
	// It never holds the URL (which may carry a token) nor our own addresses.
	Reason string
	// Elapsed is the response time: from sending the request to the end of the body.
	Elapsed time.Duration
}

// Prober checks one integration's GET {base_url}/health.
type Prober struct {
	client        *ssrf.Client
	timeout       time.Duration
	degradedAfter time.Duration
}

// NewProber returns a Prober whose client is held to the SSRF rules (https to public
// addresses only, except cfg.Allow) and bounded by cfg.Timeout and maxBodyBytes.
func NewProber(cfg Config) (*Prober, error) {
	c, err := ssrf.NewClient(ssrf.Config{
		Allow:                 cfg.Allow,
		DialTimeout:           min(ssrf.DefaultDialTimeout, cfg.Timeout),
		TLSHandshakeTimeout:   min(ssrf.DefaultTLSHandshakeTimeout, cfg.Timeout),
		ResponseHeaderTimeout: cfg.Timeout,
		Timeout:               cfg.Timeout,
		MaxHeaderBytes:        16 << 10,
		MaxBodyBytes:          maxBodyBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("health-probe: %w", err)
	}
	return &Prober{client: c, timeout: cfg.Timeout, degradedAfter: cfg.DegradedAfter}, nil
}

// Close closes idle connections.
func (p *Prober) Close() { p.client.CloseIdleConnections() }

// healthURL is base_url with /health appended to its path.
func healthURL(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base_url is not an http(s) URL")
	}
	return u.JoinPath(healthPath).String(), nil
}

// Probe checks baseURL once. It never returns an error: every failure is an offline Result
// with its reason.
func (p *Prober) Probe(ctx context.Context, baseURL string) Result {
	target, err := healthURL(baseURL)
	if err != nil {
		return Result{Status: events.HealthOffline, Reason: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return Result{Status: events.HealthOffline, Reason: "base_url is not an http(s) URL"}
	}
	req.Header.Set("Accept", "application/health+json, application/json")
	req.Header.Set("User-Agent", "MyScrollr-Connect-Health/1")
	// Each host is probed once a minute: a kept-alive connection would only sit idle.
	req.Close = true
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return Result{Status: events.HealthOffline, Reason: p.failure(ctx, err), Elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := Result{HTTPStatus: resp.StatusCode, Elapsed: time.Since(start)}
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		r.Status, r.Reason = events.HealthOffline, fmt.Sprintf("HTTP status %d", resp.StatusCode)
	case err != nil:
		r.Status, r.Reason = events.HealthOffline, p.failure(ctx, err)
	default:
		r.Status, r.Reason = judge(body)
		if r.Status == events.HealthHealthy && r.Elapsed > p.degradedAfter {
			r.Status = events.HealthDegraded
			r.Reason = fmt.Sprintf("slow: answered in %s (over %s)", r.Elapsed.Round(time.Millisecond), p.degradedAfter)
		}
	}
	return r
}

// judge reads a 2xx answer's body by the health contract (shared/conformance/health, which
// the registry's automated checks use too).
func judge(body []byte) (status, reason string) { return health.Judge(body) }

// failure says briefly why a request failed (ssrf.Describe: never the URL or an address).
func (p *Prober) failure(ctx context.Context, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = context.DeadlineExceeded
	}
	return ssrf.Describe(err, p.timeout)
}
