package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/events/kafkace"
)

// Handler handles one event; r is the record it came from (topic, partition, offset, key,
// headers). Return nil when done, [events.Permanent](err) for an event that can never succeed,
// any other error to be retried. Handlers must be idempotent: an event may be delivered again.
type Handler func(ctx context.Context, e cloudevents.Event, r *kgo.Record) error

// Defaults of [ConsumerConfig].
const (
	DefaultMaxAttempts    = 5
	DefaultMaxPollRecords = 100
	// commitTimeout bounds the final commit on shutdown, made after ctx is cancelled.
	commitTimeout = 10 * time.Second
)

// ConsumerConfig configures [Consume]. Brokers, Group, Topics and Handler are required.
type ConsumerConfig struct {
	Brokers []string // seed brokers (KAFKA_BROKERS)
	Group   string   // consumer group; one per function
	Topics  []string // topics to consume
	Handler Handler

	// MaxAttempts is the number of handler calls before a failing record is dead-lettered.
	// 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Backoff returns the wait after failed attempt n (1-based). nil means
	// Exponential(100*time.Millisecond, 10*time.Second). Tests pass a func returning 0.
	Backoff func(attempt int) time.Duration
	// DLQTopic names the dead-letter topic of a topic. nil means events.DLQ (topic + ".dlq").
	DLQTopic func(topic string) string
	// Logger receives consumer logs. nil discards them.
	Logger *slog.Logger
	// Decoder bounds and decodes records; the zero value uses kafkace's defaults.
	Decoder kafkace.Decoder
	// MaxPollRecords bounds one batch, and so how long a rebalance may wait for it.
	// 0 means DefaultMaxPollRecords.
	MaxPollRecords int
	// Opts are extra franz-go options (TLS, SASL, client id, fetch sizes, OnPartitionsAssigned).
	// They are applied last, so they must not re-enable auto-commit or replace
	// OnPartitionsRevoked: that would break the commit protocol.
	Opts []kgo.Opt
}

func (c *ConsumerConfig) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("Brokers: at least one seed broker is required (KAFKA_BROKERS)"))
	}
	if c.Group == "" {
		errs = append(errs, errors.New("Group: required"))
	}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("Topics: at least one topic is required"))
	}
	for i, t := range c.Topics {
		if t == "" {
			errs = append(errs, fmt.Errorf("Topics[%d]: empty topic name", i))
		}
	}
	if c.Handler == nil {
		errs = append(errs, errors.New("Handler: required"))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("MaxAttempts: %d is negative", c.MaxAttempts))
	}
	if c.MaxPollRecords < 0 {
		errs = append(errs, fmt.Errorf("MaxPollRecords: %d is negative", c.MaxPollRecords))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stream: invalid ConsumerConfig: %w", err)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxPollRecords == 0 {
		c.MaxPollRecords = DefaultMaxPollRecords
	}
	if c.Backoff == nil {
		c.Backoff = Exponential(100*time.Millisecond, 10*time.Second)
	}
	if c.DLQTopic == nil {
		c.DLQTopic = events.DLQ
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Exponential returns a backoff of base, 2*base, 4*base, ... capped at max.
func Exponential(base, max time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

// Consume consumes cfg.Topics in group cfg.Group until ctx is cancelled, calling cfg.Handler
// for each event, at least once (see the package documentation). It returns nil after a clean
// shutdown, or an error if the configuration is invalid, the client cannot be created, or a
// dead letter cannot be written.
func Consume(ctx context.Context, cfg ConsumerConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	c := &consumer{cfg: cfg, log: cfg.Logger.With("group", cfg.Group)}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.RequiredAcks(kgo.AllISRAcks()), // dead letters are produced idempotently too
	}
	cl, err := kgo.NewClient(append(opts, cfg.Opts...)...)
	if err != nil {
		return fmt.Errorf("stream: consumer: %w", err)
	}
	c.cl = cl
	defer cl.Close() // leaves the group; onRevoked commits anything done

	for {
		fetches := cl.PollRecords(ctx, cfg.MaxPollRecords)
		if fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		var fatal error
		for r := range fetches.RecordsAll() {
			done, err := c.handle(ctx, r)
			if err != nil {
				fatal = err
				break
			}
			if !done {
				break // shutting down: this record and the rest stay uncommitted
			}
			c.markDone(r)
		}
		if err := c.commit(ctx); err != nil {
			// The records will be delivered again; that is the at-least-once contract.
			c.log.Warn("commit failed", "err", err)
		}
		cl.AllowRebalance()
		if fatal != nil {
			return fatal
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

type consumer struct {
	cfg ConsumerConfig
	log *slog.Logger
	cl  *kgo.Client

	mu   sync.Mutex
	done []*kgo.Record // handled or dead-lettered, not yet committed
}

func (c *consumer) markDone(r *kgo.Record) {
	c.mu.Lock()
	c.done = append(c.done, r)
	c.mu.Unlock()
}

// commit synchronously commits the records that are done. It uses its own bounded context
// so that the commit on shutdown happens although ctx is already cancelled.
func (c *consumer) commit(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.done) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	err := c.cl.CommitRecords(cctx, c.done...)
	clear(c.done)
	c.done = c.done[:0]
	return err
}

func (c *consumer) onRevoked(ctx context.Context, _ *kgo.Client, _ map[string][]int32) {
	if err := c.commit(ctx); err != nil {
		c.log.Warn("commit on revoke failed", "err", err)
	}
}

// handle decodes r and calls the handler until it succeeds, fails permanently or runs out of
// attempts, dead-lettering in the last two cases. done is false when ctx was cancelled first;
// err is set when a dead letter could not be written.
func (c *consumer) handle(ctx context.Context, r *kgo.Record) (done bool, err error) {
	log := c.log.With("topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
	e, err := c.cfg.Decoder.Decode(r)
	if err != nil {
		log.Warn("undecodable record, dead-lettering", "err", err)
		return c.deadLetter(ctx, r, err, 0)
	}
	log = log.With("ce_id", e.ID(), "ce_type", e.Type())
	for attempt := 1; ; attempt++ {
		err := c.call(ctx, e, r)
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, nil
		}
		if events.IsPermanent(err) || attempt >= c.cfg.MaxAttempts {
			log.Warn("handler failed, dead-lettering", "attempt", attempt, "permanent", events.IsPermanent(err), "err", err)
			return c.deadLetter(ctx, r, err, attempt)
		}
		wait := c.cfg.Backoff(attempt)
		log.Info("handler failed, retrying", "attempt", attempt, "wait", wait, "err", err)
		if !sleep(ctx, wait) {
			return false, nil
		}
	}
}

// call runs the handler, turning a panic into an error so one bad event cannot kill the
// consumer; the stack goes to the log.
func (c *consumer) call(ctx context.Context, e cloudevents.Event, r *kgo.Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return c.cfg.Handler(ctx, e, r)
}

func (c *consumer) deadLetter(ctx context.Context, r *kgo.Record, cause error, attempts int) (bool, error) {
	topic := c.cfg.DLQTopic(r.Topic)
	if topic == "" {
		return false, fmt.Errorf("stream: DLQTopic(%q) returned an empty topic name", r.Topic)
	}
	dl := kafkace.DeadLetter(r, events.DeadLetter{
		Dest:      events.DestGroup(c.cfg.Group),
		Data:      []byte(errText(cause)),
		Attempts:  attempts,
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
	})
	dl.Topic = topic
	if err := c.cl.ProduceSync(ctx, dl).FirstErr(); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("stream: dead-letter %s/%d@%d to %s: %w", r.Topic, r.Partition, r.Offset, topic, err)
	}
	return true, nil
}

func errText(err error) string {
	if err == nil {
		return "unknown"
	}
	return err.Error()
}

// sleep waits d or until ctx is done; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
