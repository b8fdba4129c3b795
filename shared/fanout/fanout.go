// Package fanout runs one call per item with bounded concurrency and a per-key cap: the
// outbound sweeps (health probes, polls) call thousands of integrations at once, but never
// more than a few at a time on one host, so one host with many integrations is neither
// hammered by us nor able to hold up everyone else.
//
// Keys take turns: items are grouped by key and started round-robin over the keys that are
// under their cap, in the order the keys first appear. A key at its cap does not block the
// keys behind it (no head-of-line blocking), and a key with many items does not starve the
// others. Within a key, items start in their order.
package fanout

import (
	"context"
	"sync"
)

// Limits bound a Run.
type Limits struct {
	// Concurrency is how many calls may run at once (at least 1; 0 means 1).
	Concurrency int
	// PerKey is how many calls for one key may run at once (0 means Concurrency).
	PerKey int
}

type queue struct {
	items  []int // indexes of the key's items not started yet, in order
	active int   // calls of this key running
	ready  bool  // in the ready list
}

// Run calls fn once for every item, each in its own goroutine, within the limits, and returns
// when every call it started has returned. When ctx ends, calls not yet started are skipped
// (their number is returned) and running calls see ctx done. fn must not panic.
func Run[T any](ctx context.Context, items []T, key func(T) string, l Limits, fn func(context.Context, T)) (skipped int) {
	if l.Concurrency < 1 {
		l.Concurrency = 1
	}
	if l.PerKey < 1 || l.PerKey > l.Concurrency {
		l.PerKey = l.Concurrency
	}
	queues := make(map[string]*queue)
	var ready []*queue // FIFO of queues with items and room under the cap
	for i, it := range items {
		k := key(it)
		q := queues[k]
		if q == nil {
			q = &queue{ready: true}
			queues[k] = q
			ready = append(ready, q)
		}
		q.items = append(q.items, i)
	}

	var wg sync.WaitGroup
	done := make(chan *queue, l.Concurrency) // never blocks: at most Concurrency calls run
	running, remaining := 0, len(items)
	for remaining > 0 && ctx.Err() == nil {
		if running < l.Concurrency && len(ready) > 0 {
			q := ready[0]
			ready = ready[1:]
			i := q.items[0]
			q.items = q.items[1:]
			q.active++
			running++
			remaining--
			q.ready = len(q.items) > 0 && q.active < l.PerKey
			if q.ready {
				ready = append(ready, q) // its next item waits for the other keys' turns
			}
			wg.Go(func() {
				defer func() { done <- q }()
				fn(ctx, items[i])
			})
			continue
		}
		select {
		case q := <-done:
			running--
			finished(q, &ready, l.PerKey)
		case <-ctx.Done():
		}
	}
	wg.Wait()
	return remaining
}

// finished accounts for a call of q that returned, making q ready again when it has items and
// room under the cap.
func finished(q *queue, ready *[]*queue, perKey int) {
	q.active--
	if !q.ready && len(q.items) > 0 && q.active < perKey {
		q.ready = true
		*ready = append(*ready, q)
	}
}
