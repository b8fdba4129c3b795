package knative

import (
	"math"
	"time"
)

// Manifests is what Load found in a directory, in file order then document order.
type Manifests struct {
	Services     []Service
	Brokers      []Broker
	Triggers     []Trigger
	PingSources  []PingSource
	KafkaSources []KafkaSource
	KafkaSinks   []KafkaSink
	// Core kinds: the local runtime has no use for them, the deployment checks (deploy.go) do.
	ServiceAccounts []ServiceAccount
	ConfigMaps      []ConfigMap
	NetworkPolicies []Object
	// Jobs are the one-shot steps run before the functions roll out (the migration, the
	// relay's slot). The local runtime does not run them (the stack migrates, the relay
	// creates its slot at start); the deployment checks do read them.
	Jobs []Job
}

// Job is a batch/v1 Job.
type Job struct {
	Object
	BackoffLimit            *int   // spec.backoffLimit; nil when unset (Kubernetes: 6)
	ActiveDeadlineSeconds   *int   // spec.activeDeadlineSeconds; nil when unset (no deadline)
	TTLSecondsAfterFinished *int   // spec.ttlSecondsAfterFinished; nil when unset (kept forever)
	RestartPolicy           string // spec.template.spec.restartPolicy
	ServiceAccountName      string // spec.template.spec.serviceAccountName, "" when unset
	AutomountToken          *bool  // spec.template.spec.automountServiceAccountToken, nil when unset
	// RunAsNonRoot and SeccompProfile are the pod's securityContext (runAsNonRoot,
	// seccompProfile.type), nil and "" when unset.
	RunAsNonRoot   *bool
	SeccompProfile string
	// Containers are the init containers, in order, then the containers.
	Containers []Container
}

// MainContainers returns the Job's containers that are not init containers.
func (j Job) MainContainers() []Container {
	var out []Container
	for _, c := range j.Containers {
		if !c.Init {
			out = append(out, c)
		}
	}
	return out
}

// Container is one container of a Job's pod.
type Container struct {
	Field string // where it is, e.g. spec.template.spec.initContainers[0]
	Init  bool   // an init container
	Name  string
	Image string
	Args  []string
	Env   []EnvVar
	// The container's securityContext: nil when unset.
	RunAsNonRoot             *bool
	ReadOnlyRootFilesystem   *bool
	AllowPrivilegeEscalation *bool
	DropCapabilities         []string
	// Requests and Limits are resources.requests and resources.limits as written.
	Requests, Limits map[string]string
}

// Setting returns the container's env entry name.
func (c Container) Setting(name string) (EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return EnvVar{}, false
}

// ServiceAccount is a core v1 ServiceAccount.
type ServiceAccount struct {
	Object
	AutomountToken *bool // automountServiceAccountToken; nil when unset (Kubernetes mounts)
}

// ConfigMap is a core v1 ConfigMap.
type ConfigMap struct {
	Object
	Data map[string]string
}

// Probe is a container probe as written; zero fields are unset.
type Probe struct {
	Kind             string // "readiness" or "liveness"
	Path             string
	PeriodSeconds    int
	TimeoutSeconds   int
	FailureThreshold int
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
	// ServiceAccountName is spec.template.spec.serviceAccountName, "" when unset.
	ServiceAccountName string
	// AutomountToken is spec.template.spec.automountServiceAccountToken, nil when unset.
	AutomountToken *bool
	Probes         []Probe           // readiness then liveness, those that are set
	Annotations    map[string]string // spec.template.metadata.annotations
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
	Config        *Ref // spec.config: the ConfigMap of a Kafka Broker
}

// Trigger subscribes a Service to the events of a Broker that match Filter.
type Trigger struct {
	Object
	Broker     string
	Filter     map[string]string // exact match on CloudEvent attributes; empty matches everything
	Subscriber Destination
	Delivery   *Delivery // as written; see Manifests.DeliveryFor for the effective spec
	// DeliveryOrder is the kafka.eventing.knative.dev/delivery.order annotation, "" when unset
	// (eventing-kafka-broker then delivers unordered).
	DeliveryOrder string
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
	// SASLSecrets names the Secrets of spec.net (SASL user, password, type; TLS CA), "" for
	// those unset; SASL and TLS say whether spec.net enables them.
	SASL, TLS   bool
	SASLSecrets []string
	// CEOverrides are spec.ceOverrides.extensions: set on every event the source delivers,
	// replacing what the record carried (the dispatcher applies them).
	CEOverrides map[string]string
}

// KafkaSink writes the events it receives to a Kafka topic (used here as dead-letter sinks).
type KafkaSink struct {
	Object
	Topic            string
	BootstrapServers []string
	ContentMode      string
	AuthSecret       string // spec.auth.secret.ref.name, "" when unset
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

// Backoff returns the wait before retry n (n = 1 for the first retry) as the Kafka dispatcher of
// eventing-kafka-broker computes it (data-plane/dispatcher/src/main/java/dev/knative/eventing/
// kafka/broker/dispatcher/impl/http/WebClientCloudEventSender.java, computeRetryPolicy, applied
// to retryCounter + 1): the delay times n for linear, the delay times 2^n for exponential, so
// the first exponential retry waits twice the delay.
func (d Delivery) Backoff(n int) time.Duration {
	if n < 1 || d.BackoffDelay <= 0 {
		return 0
	}
	if d.BackoffPolicy == BackoffLinear {
		return d.BackoffDelay * time.Duration(n)
	}
	if n > 30 {
		n = 30 // bounded: more retries than this would wait for decades anyway
	}
	if d.BackoffDelay > time.Duration(math.MaxInt64>>n) {
		return time.Duration(math.MaxInt64) // saturate rather than overflow
	}
	return d.BackoffDelay * time.Duration(1<<n)
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
