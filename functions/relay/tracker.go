package main

import (
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// txn is one decoded transaction: its records in flight and, once its commit was read,
// where it ends in the WAL.
type txn struct {
	end      pglogrepl.LSN // TransactionEndLSN, set at commit
	commit   time.Time     // commit time, known from BEGIN
	since    time.Time     // when its first record was produced (for stall detection)
	pending  int           // records produced and not yet acknowledged
	closed   bool          // its COMMIT was read
	produced int
}

// tracker knows, for one replication session, the highest WAL position up to which every
// record was acknowledged by Kafka. Transactions are appended in commit order (the order
// pgoutput sends them); acknowledgements may come in any order across partitions, and the
// confirmed position only moves over a contiguous prefix of finished transactions.
type tracker struct {
	mu         sync.Mutex
	queue      []*txn
	confirmed  pglogrepl.LSN
	confCommit time.Time // commit time of the last confirmed transaction with records
	lastAck    time.Time
	err        error // first produce error; ends the session
	inFlight   int
}

func newTracker(start pglogrepl.LSN) *tracker { return &tracker{confirmed: start} }

// begin appends a transaction that committed at commit.
func (t *tracker) begin(commit time.Time) *txn {
	x := &txn{commit: commit}
	t.mu.Lock()
	t.queue = append(t.queue, x)
	t.mu.Unlock()
	return x
}

// produced notes one more record of x in flight, sent at now.
func (t *tracker) produced(x *txn, now time.Time) {
	t.mu.Lock()
	if x.pending == 0 {
		x.since = now
	}
	x.pending++
	x.produced++
	t.inFlight++
	t.mu.Unlock()
}

// commit marks x complete; end is the position to confirm once its records are acknowledged.
func (t *tracker) commit(x *txn, end pglogrepl.LSN) {
	t.mu.Lock()
	x.end, x.closed = end, true
	t.advance()
	t.mu.Unlock()
}

// ack records the outcome of one record of x, at now.
func (t *tracker) ack(x *txn, err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight--
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return
	}
	x.pending--
	t.lastAck = now
	if x.pending > 0 {
		x.since = now
	}
	t.advance()
}

// advance pops finished transactions off the front. Called with mu held.
func (t *tracker) advance() {
	n := 0
	for _, x := range t.queue {
		if !x.closed || x.pending > 0 {
			break
		}
		if x.end > t.confirmed {
			t.confirmed = x.end
		}
		if x.produced > 0 {
			t.confCommit = x.commit
		}
		n++
	}
	if n > 0 {
		clear(t.queue[:n])
		t.queue = t.queue[n:]
	}
}

// idle confirms pos when nothing is in flight: the server sent it in a keepalive after
// everything before it, and nothing before it is waiting for Kafka.
func (t *tracker) idle(pos pglogrepl.LSN) {
	t.mu.Lock()
	if len(t.queue) == 0 && pos > t.confirmed {
		t.confirmed = pos
	}
	t.mu.Unlock()
}

// state is a snapshot for status updates and metrics.
type trackerState struct {
	confirmed    pglogrepl.LSN
	confCommit   time.Time
	oldestCommit time.Time // zero when nothing is waiting
	waitingSince time.Time // zero when no record is in flight
	lastAck      time.Time
	inFlight     int
	err          error
}

func (t *tracker) confirmedPos() pglogrepl.LSN {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.confirmed
}

func (t *tracker) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *tracker) state() trackerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := trackerState{confirmed: t.confirmed, confCommit: t.confCommit, lastAck: t.lastAck, inFlight: t.inFlight, err: t.err}
	for _, x := range t.queue {
		if s.oldestCommit.IsZero() && (x.produced > 0 || x.closed) {
			s.oldestCommit = x.commit
		}
		if x.pending > 0 {
			// The first transaction with records in flight is (nearly always) the one
			// waiting longest; later ones were produced after it.
			s.waitingSince = x.since
			break
		}
	}
	return s
}
