package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/myscrollr/connect/shared/httpx"
)

// Shedder bounds the requests that run at once and answers the excess quickly with 503 and
// Retry-After instead of letting it queue.
//
// Without it, every request past the pool's connections waits inside pgxpool until it gets
// one; under overload that queue only grows, every request in it gets slower, and clients give
// up (the Measure section of issue 7: at 500 requests/s most requests waited until the
// client's 30 s timeout). With it, at most Limit requests run (one database connection each),
// at most MaxWaiting wait for a slot, each at most Wait; the rest are answered at once. A
// client told 503 retries elsewhere or later (Knative may meanwhile add an instance); one that
// is served is served in about the time of its query.
type Shedder struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	wait       time.Duration
	retryAfter string
	body       []byte // the 503 problem
	shed       atomic.Int64
}

// NewShedder admits limit requests at once, lets maxWaiting more wait at most wait each, and
// tells the rest to retry after retryAfter (rounded up to whole seconds, at least 1).
func NewShedder(limit, maxWaiting int, wait, retryAfter time.Duration) *Shedder {
	secs := max(int((retryAfter+time.Second-1)/time.Second), 1)
	p := httpx.Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
		Status: http.StatusServiceUnavailable, Detail: fmt.Sprintf("the catalog is busy; retry after %d s", secs)}
	body, _ := json.Marshal(&p) // strings and an int: cannot fail
	return &Shedder{slots: make(chan struct{}, limit), maxWaiting: int64(maxWaiting), wait: wait,
		retryAfter: strconv.Itoa(secs), body: append(body, '\n')}
}

// Shed is how many requests were answered 503 so far.
func (s *Shedder) Shed() int64 { return s.shed.Load() }

// acquire takes a slot, waiting at most s.wait (or until done is closed) and only when fewer
// than maxWaiting already wait.
func (s *Shedder) acquire(done <-chan struct{}) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	if s.waiting.Add(1) > s.maxWaiting {
		s.waiting.Add(-1)
		return false
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-done:
		return false
	}
}

func (s *Shedder) release() { <-s.slots }

// Wrap runs h under the limit.
func (s *Shedder) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.acquire(r.Context().Done()) {
			s.shed.Add(1)
			// Written here rather than by httpx.WriteProblem, which logs every 5xx at error
			// level: under overload that would be one log line per refused request, the cost
			// shedding exists to avoid. Shed() counts them.
			h := w.Header()
			h.Set("Retry-After", s.retryAfter)
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Type", "application/problem+json")
			h.Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(s.body)
			return
		}
		defer s.release()
		h.ServeHTTP(w, r)
	})
}
