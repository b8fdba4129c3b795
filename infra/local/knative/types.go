package knative

import "time"

// Manifests is what Load found in a directory, in file order then document order.
type Manifests struct {
	Services     []Service
	Brokers      []Broker
	Triggers     []Trigger
	PingSources  []PingSource
	KafkaSources []KafkaSource
	KafkaSinks   []KafkaSink
}

// Object identifies a manifest: where it was read and what it is.
type Object struct {
	File      string // base name of the file
	Kind      string
	Name      string
	Namespace string
}

// Service is a Knative Service: one function.
type Service struct {
	Object
	Image          string   // e.g. ko://github.com/myscrollr/connect/functions/catalog
	MinScale       int      // autoscaling.knative.dev/min-scale, 0 when unset
	MaxScale       int      // autoscaling.knative.dev/max-scale, 0 when unset (unbounded)
	Port           int      // containerPort, 8080 when unset (Knative's default)
	Env            []EnvVar // container env, in order
	ReadinessPath  string   // readinessProbe.httpGet.path
	LivenessPath   string   // livenessProbe.httpGet.path
	TimeoutSeconds int      // request timeout, 0 when unset
}

// EnvVar is one container environment variable: a literal Value, or a key of a ConfigMap or
// Secret (From names which).
type EnvVar struct {
	Name  string
	Value string
	From  *EnvSource
}

// EnvSource is the valueFrom of an EnvVar.
type EnvSource struct {
	Kind string // "ConfigMap" or "Secret"
	Name string // the ConfigMap or Secret
	Key  string
}

// Broker is an eventing.knative.dev/v1 Broker.
type Broker struct {
	Object
	Class         string // eventing.knative.dev/broker.class
	ExternalTopic string // kafka.eventing.knative.dev/external.topic; empty if the broker owns its topic
	Delivery      *Delivery
}

// Trigger subscribes a Service to the events of a Broker that match Filter.
type Trigger struct {
	Object
	Broker     string
	Filter     map[string]string // exact match on CloudEvent attributes; empty matches everything
	Subscriber Destination
	Delivery   *Delivery // as written; see Manifests.DeliveryFor for the effective spec
}

// PingSource sends Data on a cron Schedule.
type PingSource struct {
	Object
	Schedule    string // five-field cron, "* * * * *" when unset
	Timezone    string // IANA name, empty = UTC locally
	ContentType string
	Data        []byte // data, or dataBase64 decoded
	Sink        Destination
}

// KafkaSource delivers the records of Kafka topics to a sink.
type KafkaSource struct {
	Object
	Topics           []string
	ConsumerGroup    string
	BootstrapServers []string
	InitialOffset    string // "earliest" or "latest" (Knative's default)
	Sink             Destination
	Delivery         *Delivery
}

// KafkaSink writes the events it receives to a Kafka topic (used here as dead-letter sinks).
type KafkaSink struct {
	Object
	Topic            string
	BootstrapServers []string
	ContentMode      string
}

// Destination is a Knative duck Destination: a reference to an addressable, optionally with a
// URI relative to it, or an absolute URI.
type Destination struct {
	Ref *Ref
	URI string
	// Audience is the OIDC audience of the sender token Eventing attaches to every delivery
	// to this destination (feature authentication-oidc); the receiving function accepts only
	// tokens for its own audience (EVENTS_OIDC_AUDIENCE).
	Audience string
}

// Ref is a KReference.
type Ref struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
}

// BackoffPolicy says how the delay between retries grows.
type BackoffPolicy string

// Backoff policies of the Knative DeliverySpec.
const (
	BackoffLinear      BackoffPolicy = "linear"
	BackoffExponential BackoffPolicy = "exponential"
)

// Delivery is a Knative DeliverySpec with durations parsed.
type Delivery struct {
	Retry          int           // retries after the first attempt
	BackoffPolicy  BackoffPolicy // exponential when unset (Knative's default)
	BackoffDelay   time.Duration // 0 when unset
	Timeout        time.Duration // per attempt, 0 when unset
	DeadLetterSink *Destination
}

// Backoff returns the wait before retry n (n = 1 for the first retry): the delay times n for
// linear, the delay times 2^(n-1) for exponential, so the first retry always waits the delay.
func (d Delivery) Backoff(n int) time.Duration {
	if n < 1 || d.BackoffDelay <= 0 {
		return 0
	}
	if d.BackoffPolicy == BackoffLinear {
		return d.BackoffDelay * time.Duration(n)
	}
	if n > 31 {
		n = 31 // bounded: more retries than this would wait for decades anyway
	}
	return d.BackoffDelay * time.Duration(1<<(n-1))
}

// Service returns the Service named name.
func (m *Manifests) Service(name string) (Service, bool) {
	for _, s := range m.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Broker returns the Broker named name.
func (m *Manifests) Broker(name string) (Broker, bool) {
	for _, b := range m.Brokers {
		if b.Name == name {
			return b, true
		}
	}
	return Broker{}, false
}

// KafkaSink returns the KafkaSink named name.
func (m *Manifests) KafkaSink(name string) (KafkaSink, bool) {
	for _, s := range m.KafkaSinks {
		if s.Name == name {
			return s, true
		}
	}
	return KafkaSink{}, false
}

// DeliveryFor returns the effective delivery of a Trigger: its own when it has one (with the
// Broker's dead-letter sink when it names none), else its Broker's, else no retries.
func (m *Manifests) DeliveryFor(t Trigger) Delivery {
	var broker *Delivery
	if b, ok := m.Broker(t.Broker); ok {
		broker = b.Delivery
	}
	switch {
	case t.Delivery != nil:
		d := *t.Delivery
		if d.DeadLetterSink == nil && broker != nil {
			d.DeadLetterSink = broker.DeadLetterSink
		}
		return d
	case broker != nil:
		return *broker
	}
	return Delivery{BackoffPolicy: BackoffExponential}
}
