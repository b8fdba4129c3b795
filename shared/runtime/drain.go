package runtime

import (
	"sync"
	"time"
)

// drainer tracks whether the server is draining, how many non-probe requests are in flight and
// when the last one arrived or finished, so that Drain can wait for a quiet period (see the
// package doc for why knative.dev/pkg/network/handlers is not imported).
//
// Semantics: as Knative's Drainer, the quiet period restarts with every request arrival; in
// addition it does not run out while a request is in flight and restarts when one finishes,
// so the listener stays open (and /readyz keeps answering 503) until the work is done. The
// wait is bounded by quiet+limit in case a request never finishes.
type drainer struct {
	now func() time.Time

	mu       sync.Mutex
	draining bool
	start    time.Time // when draining started
	inflight int
	last     time.Time // most recent arrival or completion of a non-probe request
	wake     chan struct{}
}

func newDrainer(now func() time.Time) *drainer {
	return &drainer{now: now}
}

// Begin records a request arrival.
func (d *drainer) Begin() {
	d.mu.Lock()
	d.inflight++
	d.last = d.now()
	d.mu.Unlock()
}

// End records a request completion.
func (d *drainer) End() {
	d.mu.Lock()
	d.inflight--
	d.last = d.now()
	if d.inflight == 0 && d.wake != nil {
		close(d.wake)
		d.wake = nil
	}
	d.mu.Unlock()
}

// Draining reports whether Drain has been called.
func (d *drainer) Draining() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draining
}

// Start marks the server draining: readiness fails from now on. Later calls do nothing.
func (d *drainer) Start() {
	d.mu.Lock()
	if !d.draining {
		d.draining, d.start = true, d.now()
	}
	d.mu.Unlock()
}

// Drain calls Start and blocks until no request is in flight and quiet has passed since
// draining started and since the last request activity, or until quiet+limit has passed
// since draining started.
func (d *drainer) Drain(quiet, limit time.Duration) {
	d.Start()
	d.mu.Lock()
	start := d.start
	d.mu.Unlock()
	hardStop := start.Add(quiet + limit)
	for {
		d.mu.Lock()
		now := d.now()
		if !now.Before(hardStop) {
			d.mu.Unlock()
			return
		}
		var wake chan struct{}
		var wait time.Duration
		if d.inflight > 0 {
			if d.wake == nil {
				d.wake = make(chan struct{})
			}
			wake, wait = d.wake, hardStop.Sub(now)
		} else {
			from := start
			if d.last.After(from) {
				from = d.last
			}
			wait = from.Add(quiet).Sub(now)
			if wait <= 0 {
				d.mu.Unlock()
				return
			}
		}
		d.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-wake: // nil when nothing is in flight: only the timer fires
			t.Stop()
		}
	}
}
