package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/myscrollr/connect/infra/local/knative"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config.
const (
	DefaultMaxInFlight    = 64
	DefaultAttemptTimeout = 30 * time.Second
)

// PingDelivery is the delivery of PingSource ticks: PingSource has no delivery spec.
var PingDelivery = knative.Delivery{Retry: 3, BackoffPolicy: knative.BackoffExponential, BackoffDelay: 200 * time.Millisecond}

// Config configures Run. Brokers, Manifests and Resolve are required.
type Config struct {
	// Brokers are the Kafka bootstrap addresses (KAFKA_BROKERS), e.g. 127.0.0.1:9092.
	Brokers []string
	// Manifests say what to consume and where to deliver (knative.Load("infra/knative")).
	Manifests *knative.Manifests
	// Resolve maps a Service name to its base URL, e.g. "install" -> "http://127.0.0.1:40123".
	// It is called for every attempt, so a restarted function may move.
	Resolve func(service string) (string, error)
	// Logger receives delivery failures and dead letters; slog.Default() when nil.
	Logger *slog.Logger
	// HTTPClient sends the events; a client with keep-alive pooling sized for MaxInFlight
	// when nil. Attempts are bounded by the delivery timeout, not by the client.
	HTTPClient *http.Client
	// MaxInFlight bounds the events in flight per Trigger or KafkaSource; DefaultMaxInFlight
	// when 0.
	MaxInFlight int
	// Clock drives PingSource schedules and retry backoff; the system clock when nil.
	Clock Clock
	// KafkaOpts are added to every Kafka client (tests: kgo.FetchMaxWait, ...).
	KafkaOpts []kgo.Opt
	// DisablePings turns PingSources off (tests that exercise only Triggers).
	DisablePings bool
	// DisableSources turns KafkaSources off.
	DisableSources bool
	// Tokens returns a sender token for an audience (Knative Eventing sender identity,
	// feature authentication-oidc): every delivery to a destination that declares an
	// audience carries "Authorization: Bearer <token>". Nil sends no tokens; the functions
	// then refuse the events (401, dead-lettered).
	Tokens func(ctx context.Context, audience string) (string, error)
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("dispatch: Config.Brokers (KAFKA_BROKERS): at least one broker address required"))
	}
	if c.Manifests == nil {
		errs = append(errs, errors.New("dispatch: Config.Manifests: required (knative.Load of infra/knative)"))
	}
	if c.Resolve == nil {
		errs = append(errs, errors.New("dispatch: Config.Resolve: required (maps Service names to base URLs)"))
	}
	if c.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("dispatch: Config.MaxInFlight: must not be negative, got %d", c.MaxInFlight))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // local functions, never through a proxy
			MaxIdleConns:        4 * c.MaxInFlight,
			MaxIdleConnsPerHost: c.MaxInFlight,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return c
}

// Run dispatches until ctx is done, then stops every consumer (committing what is done) and
// returns nil. It returns an error at once when the Config or the manifests cannot be used,
// and when a consumer fails for good.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	routes, err := buildRoutes(cfg)
	if err != nil {
		return err
	}
	var pingers []*pinger
	if !cfg.DisablePings {
		for _, ps := range cfg.Manifests.PingSources {
			p, err := newPinger(cfg, ps)
			if err != nil {
				return err
			}
			pingers = append(pingers, p)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var wg sync.WaitGroup
	fail := func(err error) { cancel(err) }
	for _, r := range routes {
		c, err := newConsumer(cfg, r)
		if err != nil {
			cancel(nil)
			wg.Wait()
			return err
		}
		wg.Go(func() {
			if err := c.run(ctx); err != nil {
				fail(err)
			}
		})
	}
	for _, p := range pingers {
		wg.Go(func() { p.run(ctx) })
	}
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// route is one consumer: a Trigger or a KafkaSource.
type route struct {
	name          string // "Trigger connect/notify-install-completed", for logs
	group         string
	topics        []string
	filter        map[string]string // Trigger only
	source        *knative.KafkaSource
	target        knative.Destination
	delivery      knative.Delivery
	dlq           deadLetter
	initialOffset kgo.Offset
}

// deadLetter says where dead letters go: a topic, or an HTTP destination.
type deadLetter struct {
	topic string               // empty: "<record topic>.dlq" unless http is set
	http  *knative.Destination // a Service or URI dead-letter sink
}

func buildRoutes(cfg Config) ([]route, error) {
	m := cfg.Manifests
	var routes []route
	for _, t := range m.Triggers {
		b, ok := m.Broker(t.Broker)
		if !ok {
			return nil, fmt.Errorf("dispatch: Trigger %q: no Broker %q", t.Name, t.Broker)
		}
		topic := b.ExternalTopic
		if topic == "" {
			topic = "knative-broker-" + b.Namespace + "-" + b.Name
		}
		d := m.DeliveryFor(t)
		dl, err := deadLetterFor(m, d)
		if err != nil {
			return nil, fmt.Errorf("dispatch: Trigger %q: %w", t.Name, err)
		}
		routes = append(routes, route{
			name:          "Trigger " + t.Namespace + "/" + t.Name,
			group:         "knative-trigger-" + t.Namespace + "-" + t.Name,
			topics:        []string{topic},
			filter:        t.Filter,
			target:        t.Subscriber,
			delivery:      d,
			dlq:           dl,
			initialOffset: kgo.NewOffset().AtStart(),
		})
	}
	if cfg.DisableSources {
		return routes, nil
	}
	for i := range m.KafkaSources {
		k := &m.KafkaSources[i]
		var d knative.Delivery
		if k.Delivery != nil {
			d = *k.Delivery
		}
		dl, err := deadLetterFor(m, d)
		if err != nil {
			return nil, fmt.Errorf("dispatch: KafkaSource %q: %w", k.Name, err)
		}
		off := kgo.NewOffset().AtEnd()
		if k.InitialOffset == "earliest" {
			off = kgo.NewOffset().AtStart()
		}
		routes = append(routes, route{
			name:          "KafkaSource " + k.Namespace + "/" + k.Name,
			group:         k.ConsumerGroup,
			topics:        k.Topics,
			source:        k,
			target:        k.Sink,
			delivery:      d,
			dlq:           dl,
			initialOffset: off,
		})
	}
	return routes, nil
}

func deadLetterFor(m *knative.Manifests, d knative.Delivery) (deadLetter, error) {
	dls := d.DeadLetterSink
	if dls == nil {
		return deadLetter{}, nil
	}
	if dls.Ref != nil && dls.Ref.Kind == "KafkaSink" {
		s, ok := m.KafkaSink(dls.Ref.Name)
		if !ok {
			return deadLetter{}, fmt.Errorf("dead-letter sink: no KafkaSink %q", dls.Ref.Name)
		}
		return deadLetter{topic: s.Topic}, nil
	}
	return deadLetter{http: dls}, nil
}

// resolve turns a destination into a URL.
func resolve(cfg Config, d knative.Destination) (string, error) {
	if d.Ref == nil {
		return d.URI, nil
	}
	if d.Ref.Kind != "Service" {
		return "", fmt.Errorf("cannot resolve %s %q: only Services are addressable locally", d.Ref.Kind, d.Ref.Name)
	}
	base, err := cfg.Resolve(d.Ref.Name)
	if err != nil {
		return "", fmt.Errorf("resolve Service %q: %w", d.Ref.Name, err)
	}
	if d.URI == "" {
		return base, nil
	}
	if strings.Contains(d.URI, "://") {
		return d.URI, nil
	}
	return strings.TrimRight(base, "/") + "/" + strings.TrimLeft(d.URI, "/"), nil
}
