package main

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per integration: rate tokens a second up to burst; an event
// costs one. It lives in the replica's memory, so with n replicas an integration gets up to
// n times the rate; the gateway's per-client_id limit (KrakenD) is the global bound.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// take takes n tokens of key's bucket, or none: it returns 0 when they were taken, otherwise
// how long until n tokens are there (n above the burst never is: the batch bound keeps n
// below it).
func (l *limiter) take(key string, n int) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) > 100000 {
			clear(l.buckets) // bounded; a forgotten bucket starts full, which only forgives
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.at = now
	}
	need := float64(n)
	if b.tokens >= need {
		b.tokens -= need
		return 0
	}
	wait := (need - b.tokens) / l.rate
	return time.Duration(math.Ceil(wait * float64(time.Second)))
}

// retryAfter is the Retry-After header value for a wait: whole seconds, at least 1.
func retryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
