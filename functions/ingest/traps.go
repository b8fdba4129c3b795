package main

import (
	"crypto/sha256"
	"sync"
)

// A transform failure on the Kafka path (HandleEvent) is retried once and then dead-lettered.
//
// A trap, a time or memory limit of the integration's transform fails the batch (wasmhost);
// over HTTP the pusher gets 422 and decides. On /events the event is redelivered by the
// KafkaSource (delivery.retry 5, exponential back-off, then its dead-letter sink), and each
// retry holds up the records behind it. Most failures are the module's own bug and happen
// again on the same input; a few are the machine's (a time limit under load). So the first
// failure is an ordinary error (retried: a transient cause gets its chance) and a second
// failure of the same input (integration, source, id and data) is permanent: the event goes to
// the dead-letter topic at once with the reason. The memory is the replica's own and bounded
// (maxTraps inputs, forgotten all at once when full): with n replicas an input may fail up to
// 2n times before it is dead-lettered, never more than the delivery's retries allow.
type traps struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]struct{}
}

const maxTraps = 4096

// again records that input failed and reports whether it had failed before.
func (t *traps) again(integrationID, source, id string, data []byte) bool {
	h := sha256.New()
	for _, s := range []string{integrationID, source, id} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(data)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seen[k]; ok {
		delete(t.seen, k)
		return true
	}
	if t.seen == nil || len(t.seen) >= maxTraps {
		t.seen = make(map[[sha256.Size]byte]struct{})
	}
	t.seen[k] = struct{}{}
	return false
}
