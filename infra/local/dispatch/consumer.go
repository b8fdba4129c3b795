package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/myscrollr/connect/events/kafkace"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commitTimeout bounds the final commits made while stopping or in a rebalance.
const commitTimeout = 10 * time.Second

// consumer runs one route: a consumer group that delivers what it reads.
type consumer struct {
	cfg   Config
	r     route
	log   *slog.Logger
	cl    *kgo.Client
	send  *sender
	sem   chan struct{}
	wake  chan struct{} // a completion happened: commit
	mu    sync.Mutex
	parts map[topicPartition]*partition
}

type topicPartition struct {
	topic     string
	partition int32
}

// partition tracks the polled offsets of one assigned partition in order, so that the
// commit point only moves over a contiguous prefix of done records.
type partition struct {
	dead      bool // revoked or lost: completions no longer count
	pending   []*slot
	head      int
	done      kgo.EpochOffset // next offset to commit (the end of the done prefix); Offset -1 if none
	committed int64
}

type slot struct {
	offset int64
	epoch  int32
	done   bool
}

func newConsumer(cfg Config, r route) (*consumer, error) {
	c := &consumer{
		cfg:   cfg,
		r:     r,
		log:   cfg.Logger.With("route", r.name, "group", r.group),
		sem:   make(chan struct{}, cfg.MaxInFlight),
		wake:  make(chan struct{}, 1),
		parts: map[topicPartition]*partition{},
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ConsumerGroup(r.group),
		kgo.ConsumeTopics(r.topics...),
		kgo.ConsumeResetOffset(r.initialOffset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.AllowAutoTopicCreation(),
	}
	cl, err := kgo.NewClient(append(opts, cfg.KafkaOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("dispatch: %s: kafka client: %w", r.name, err)
	}
	c.cl = cl
	c.send = &sender{cfg: cfg, log: c.log, client: cl}
	return c, nil
}

// run consumes until ctx is done, then abandons in-flight deliveries, commits what is done
// and closes the client.
func (c *consumer) run(ctx context.Context) error {
	var wg sync.WaitGroup
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		c.commitLoop(ctx)
	}()
	for ctx.Err() == nil {
		fetches := c.cl.PollRecords(ctx, c.cfg.MaxInFlight)
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		var batch []*kgo.Record
		var slots []*slot
		var owners []*partition
		fetches.EachRecord(func(rec *kgo.Record) {
			p, s := c.track(rec)
			batch, slots, owners = append(batch, rec), append(slots, s), append(owners, p)
		})
		// Every polled record is tracked: a rebalance may now run (its revoke commits only
		// the done prefix of each partition).
		c.cl.AllowRebalance()
		for i, rec := range batch {
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-c.sem }()
				if err := c.handle(ctx, rec); err == nil {
					c.complete(owners[i], slots[i])
				}
			})
		}
	}
	wg.Wait()
	<-commitDone
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	c.commit(cctx, nil)
	cancel()
	c.cl.Close()
	return nil
}

// handle turns a record into an event and delivers it. nil means done.
func (c *consumer) handle(ctx context.Context, rec *kgo.Record) error {
	var e cloudevents.Event
	if c.r.source != nil {
		e = sourceEvent(c.r.source, rec, c.log)
	} else {
		var err error
		e, err = kafkace.Decode(rec)
		if err != nil {
			c.log.Error("skipping a record that is not a valid CloudEvent", "topic", rec.Topic,
				"partition", rec.Partition, "offset", rec.Offset, "err", err)
			return nil
		}
		if !Matches(c.r.filter, e) {
			return nil
		}
	}
	return c.send.deliver(ctx, c.r.target, e, c.r.delivery, c.r.dlq, rec)
}

func (c *consumer) track(rec *kgo.Record) (*partition, *slot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := topicPartition{rec.Topic, rec.Partition}
	p := c.parts[key]
	if p == nil {
		p = &partition{done: kgo.EpochOffset{Epoch: -1, Offset: -1}, committed: -1}
		c.parts[key] = p
	}
	s := &slot{offset: rec.Offset, epoch: rec.LeaderEpoch}
	p.pending = append(p.pending, s)
	return p, s
}

// complete marks a record done and moves its partition's commit point over the done prefix.
func (c *consumer) complete(p *partition, s *slot) {
	c.mu.Lock()
	s.done = true
	moved := false
	live := !p.dead
	for p.head < len(p.pending) && p.pending[p.head].done {
		h := p.pending[p.head]
		p.done = kgo.EpochOffset{Epoch: h.epoch, Offset: h.offset + 1}
		p.pending[p.head] = nil
		p.head++
		moved = true
	}
	if p.head > 256 && p.head*2 > len(p.pending) {
		p.pending = append([]*slot(nil), p.pending[p.head:]...)
		p.head = 0
	}
	c.mu.Unlock()
	if moved && live {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// commitLoop commits after completions, coalescing them while a commit is in flight.
func (c *consumer) commitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
			c.commit(ctx, nil)
		}
	}
}

// commit commits the done prefix of the given partitions (all live ones when only is nil).
func (c *consumer) commit(ctx context.Context, only map[string][]int32) {
	c.mu.Lock()
	offsets := map[string]map[int32]kgo.EpochOffset{}
	want := func(tp topicPartition) bool {
		if only == nil {
			return true
		}
		for _, p := range only[tp.topic] {
			if p == tp.partition {
				return true
			}
		}
		return false
	}
	for tp, p := range c.parts {
		if p.dead || p.done.Offset <= p.committed || !want(tp) {
			continue
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.topic][tp.partition] = p.done
	}
	c.mu.Unlock()
	if len(offsets) == 0 {
		return
	}
	c.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("commit failed", "err", err)
			}
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				if rp.ErrorCode != 0 {
					c.log.Warn("commit refused", "topic", t.Topic, "partition", rp.Partition, "code", rp.ErrorCode)
					continue
				}
				if p := c.parts[topicPartition{t.Topic, rp.Partition}]; p != nil {
					if o := offsets[t.Topic][rp.Partition].Offset; o > p.committed {
						p.committed = o
					}
				}
			}
		}
	})
}

// revoked commits the done prefix of the revoked partitions and forgets them; records of
// theirs still in flight will not be committed (another member redelivers them).
func (c *consumer) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	c.commit(cctx, revoked)
	c.forget(revoked)
}

// lost forgets partitions without committing: the group generation is gone.
func (c *consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.forget(lost)
}

func (c *consumer) forget(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			key := topicPartition{topic, p}
			if tr := c.parts[key]; tr != nil {
				tr.dead = true
				delete(c.parts, key)
			}
		}
	}
}
