package main

import (
	"errors"
	"testing"
	"time"
)

func TestTrackerConfirmsContiguousPrefixOnly(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newTracker(100)
	a := tr.begin(t0)
	tr.produced(a, t0)
	tr.produced(a, t0)
	tr.commit(a, 200)
	b := tr.begin(t0.Add(time.Second))
	tr.produced(b, t0)
	tr.commit(b, 300)
	empty := tr.begin(t0.Add(2 * time.Second)) // a transaction with nothing for us
	tr.commit(empty, 400)

	// b's record is acknowledged first (another partition): nothing moves until a is done.
	tr.ack(b, nil, t0)
	if got := tr.confirmedPos(); got != 100 {
		t.Fatalf("confirmed %v before a was acknowledged", got)
	}
	if st := tr.state(); !st.oldestCommit.Equal(t0) || st.inFlight != 2 {
		t.Fatalf("state = %+v", st)
	}
	tr.ack(a, nil, t0)
	if got := tr.confirmedPos(); got != 100 {
		t.Fatalf("confirmed %v with one record of a in flight", got)
	}
	tr.ack(a, nil, t0)
	if got := tr.confirmedPos(); got != 400 {
		t.Fatalf("confirmed %v, want 400 (a, b and the empty one done)", got)
	}
	if st := tr.state(); !st.oldestCommit.IsZero() || st.inFlight != 0 || !st.confCommit.Equal(t0.Add(time.Second)) {
		t.Fatalf("state after = %+v", st)
	}
	// A keepalive position is confirmed only when nothing waits.
	tr.idle(500)
	if got := tr.confirmedPos(); got != 500 {
		t.Fatalf("idle: %v", got)
	}
	open := tr.begin(t0)
	tr.idle(600)
	if got := tr.confirmedPos(); got != 500 {
		t.Fatalf("idle moved past an open transaction: %v", got)
	}
	tr.produced(open, t0)
	tr.ack(open, errors.New("boom"), t0)
	if tr.failure() == nil {
		t.Fatal("produce error not kept")
	}
}

func TestTrackerNeverMovesBackwards(t *testing.T) {
	tr := newTracker(1000)
	x := tr.begin(time.Now())
	tr.commit(x, 900) // replayed transaction below the slot's position
	if got := tr.confirmedPos(); got != 1000 {
		t.Fatalf("confirmed moved back to %v", got)
	}
}
