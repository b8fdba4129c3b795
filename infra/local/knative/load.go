package knative

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxFileSize bounds each manifest file read by Load and Parse.
const MaxFileSize = 1 << 20

// Annotations the loader reads.
const (
	AnnotationMinScale      = "autoscaling.knative.dev/min-scale"
	AnnotationMaxScale      = "autoscaling.knative.dev/max-scale"
	AnnotationBrokerClass   = "eventing.knative.dev/broker.class"
	AnnotationExternalTopic = "kafka.eventing.knative.dev/external.topic"
	// AnnotationDeliveryOrder is read by eventing-kafka-broker's Trigger reconciler
	// (control-plane/pkg/reconciler/trigger/trigger.go deliveryOrderAnnotation).
	AnnotationDeliveryOrder = "kafka.eventing.knative.dev/delivery.order"
)

// KafkaSinkAPIVersion is the apiVersion of KafkaSink, as its CRD (eventing-kafka-broker,
// kafkasinks.eventing.knative.dev) serves it. The group is eventing.knative.dev; the
// look-alike eventing.kafka.knative.dev is not served and a cluster would reject it.
const KafkaSinkAPIVersion = "eventing.knative.dev/v1alpha1"

// ignoredKinds are built-in kinds that configure the cluster; the local runtime has no use for
// them. ServiceAccounts, ConfigMaps, NetworkPolicies and Jobs are still read for the
// deployment checks.
var ignoredKinds = map[string]bool{
	"v1/Namespace": true, "v1/ConfigMap": true, "v1/Secret": true, "v1/ServiceAccount": true,
	"networking.k8s.io/v1/NetworkPolicy": true, "batch/v1/Job": true,
}

// dns1123Label is the shape of a Kubernetes object name that is also a DNS label.
var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// eachManifest calls f with the name and contents of every *.yaml and *.yml file of dir (not
// recursive, in name order), each read bounded; it stops at the first error.
func eachManifest(dir string, f func(name string, data []byte) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("knative manifests: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		data, err := readBounded(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := f(name, data); err != nil {
			return err
		}
	}
	return nil
}

// eachDocument calls f with every document of every manifest file of dir (see eachManifest).
func eachDocument(dir string, f func(d Document) error) error {
	return eachManifest(dir, func(name string, data []byte) error {
		docs, err := SplitDocuments(name, data)
		if err != nil {
			return err
		}
		for _, d := range docs {
			if err := f(d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Load reads every *.yaml and *.yml file of each dir (not recursive, in name order, the dirs
// in the order given), then checks the references between all the objects read, so a
// manifest of one directory may refer to an object of another. With more than one dir, each
// Object.File is "<base name of the dir>/<file>" so errors say which directory.
func Load(dirs ...string) (*Manifests, error) {
	if len(dirs) == 0 {
		return nil, errors.New("knative manifests: no directory given")
	}
	m := &Manifests{}
	for _, dir := range dirs {
		err := eachManifest(dir, func(name string, data []byte) error {
			file := name
			if len(dirs) > 1 {
				file = filepath.Base(filepath.Clean(dir)) + "/" + name
			}
			return m.parseFile(file, data)
		})
		if err != nil {
			return nil, err
		}
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// Parse parses one multi-document YAML file (named file in errors) and checks its references.
func Parse(file string, data []byte) (*Manifests, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, MaxFileSize)
	}
	m := &Manifests{}
	if err := m.parseFile(file, data); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("knative manifests: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, fmt.Errorf("knative manifests: read %s: %w", path, err)
	}
	if buf.Len() > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", filepath.Base(path), MaxFileSize)
	}
	return buf.Bytes(), nil
}

// Document is one YAML document of a file, converted to JSON.
type Document struct {
	File  string
	Index int // 0-based position among the non-empty documents of File
	JSON  []byte
}

// SplitDocuments splits a multi-document YAML file at "---" lines and converts each non-empty
// document to JSON. Duplicate keys are an error.
func SplitDocuments(file string, data []byte) ([]Document, error) {
	var docs []Document
	for i, part := range splitYAML(data) {
		j, err := yaml.YAMLToJSONStrict(part)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, i+1, err)
		}
		if t := bytes.TrimSpace(j); len(t) == 0 || string(t) == "null" {
			continue
		}
		docs = append(docs, Document{File: file, Index: len(docs), JSON: j})
	}
	return docs, nil
}

func splitYAML(data []byte) [][]byte {
	var parts [][]byte
	var cur []byte
	for line := range bytes.Lines(data) {
		trimmed := bytes.TrimRight(line, " \t\r\n")
		if bytes.Equal(trimmed, []byte("---")) || bytes.HasPrefix(trimmed, []byte("--- ")) {
			parts = append(parts, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(parts, cur)
}

type rawMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Annotations map[string]string `json:"annotations"`
}

type rawHeader struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Metadata   rawMeta `json:"metadata"`
	// Fields of core kinds the deployment checks read.
	AutomountServiceAccountToken *bool             `json:"automountServiceAccountToken"`
	Data                         map[string]string `json:"data"`
}

type rawRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
}

type rawDestination struct {
	Ref      *rawRef `json:"ref"`
	URI      string  `json:"uri"`
	Audience string  `json:"audience"`
}

type rawDelivery struct {
	Retry          *int            `json:"retry"`
	BackoffPolicy  string          `json:"backoffPolicy"`
	BackoffDelay   string          `json:"backoffDelay"`
	Timeout        string          `json:"timeout"`
	DeadLetterSink *rawDestination `json:"deadLetterSink"`
}

type rawService struct {
	Spec struct {
		Template struct {
			Metadata rawMeta `json:"metadata"`
			Spec     struct {
				TimeoutSeconds               int    `json:"timeoutSeconds"`
				ServiceAccountName           string `json:"serviceAccountName"`
				AutomountServiceAccountToken *bool  `json:"automountServiceAccountToken"`
				Containers                   []struct {
					Image string `json:"image"`
					Ports []struct {
						ContainerPort int `json:"containerPort"`
					} `json:"ports"`
					Env            []rawEnvVar `json:"env"`
					ReadinessProbe *rawProbe   `json:"readinessProbe"`
					LivenessProbe  *rawProbe   `json:"livenessProbe"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type rawEnvVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		ConfigMapKeyRef *rawKeyRef `json:"configMapKeyRef"`
		SecretKeyRef    *rawKeyRef `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

type rawKeyRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// rawJob is the part of a batch/v1 Job the manifests may use. Jobs have no CRD to validate
// against, so a Job is decoded strictly: a field not listed here (a misspelt one, or one the
// deployment checks do not know yet) is an error rather than silently dropped.
type rawJob struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		BackoffLimit            *int `json:"backoffLimit"`
		ActiveDeadlineSeconds   *int `json:"activeDeadlineSeconds"`
		TTLSecondsAfterFinished *int `json:"ttlSecondsAfterFinished"`
		Template                struct {
			Metadata struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				RestartPolicy                string `json:"restartPolicy"`
				ServiceAccountName           string `json:"serviceAccountName"`
				AutomountServiceAccountToken *bool  `json:"automountServiceAccountToken"`
				SecurityContext              *struct {
					RunAsNonRoot   *bool `json:"runAsNonRoot"`
					RunAsUser      *int  `json:"runAsUser"`
					RunAsGroup     *int  `json:"runAsGroup"`
					SeccompProfile *struct {
						Type string `json:"type"`
					} `json:"seccompProfile"`
				} `json:"securityContext"`
				InitContainers []rawContainer `json:"initContainers"`
				Containers     []rawContainer `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type rawContainer struct {
	Name            string      `json:"name"`
	Image           string      `json:"image"`
	Args            []string    `json:"args"`
	Env             []rawEnvVar `json:"env"`
	SecurityContext *struct {
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	Resources struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
}

type rawProbe struct {
	HTTPGet *struct {
		Path string `json:"path"`
	} `json:"httpGet"`
	PeriodSeconds    int `json:"periodSeconds"`
	TimeoutSeconds   int `json:"timeoutSeconds"`
	FailureThreshold int `json:"failureThreshold"`
}

type rawBroker struct {
	Spec struct {
		Config   *rawRef      `json:"config"`
		Delivery *rawDelivery `json:"delivery"`
	} `json:"spec"`
}

type rawTrigger struct {
	Spec struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes"`
		} `json:"filter"`
		Subscriber rawDestination `json:"subscriber"`
		Delivery   *rawDelivery   `json:"delivery"`
	} `json:"spec"`
}

type rawPingSource struct {
	Spec struct {
		Schedule    string         `json:"schedule"`
		Timezone    string         `json:"timezone"`
		ContentType string         `json:"contentType"`
		Data        string         `json:"data"`
		DataBase64  string         `json:"dataBase64"`
		Sink        rawDestination `json:"sink"`
	} `json:"spec"`
}

type rawKafkaSource struct {
	Spec struct {
		Topics           []string       `json:"topics"`
		ConsumerGroup    string         `json:"consumerGroup"`
		BootstrapServers []string       `json:"bootstrapServers"`
		InitialOffset    string         `json:"initialOffset"`
		Sink             rawDestination `json:"sink"`
		Delivery         *rawDelivery   `json:"delivery"`
		CEOverrides      *struct {
			Extensions map[string]string `json:"extensions"`
		} `json:"ceOverrides"`
		Net *struct {
			SASL *struct {
				Enable   bool          `json:"enable"`
				User     *rawSecretRef `json:"user"`
				Password *rawSecretRef `json:"password"`
				Type     *rawSecretRef `json:"type"`
			} `json:"sasl"`
			TLS *struct {
				Enable bool          `json:"enable"`
				CACert *rawSecretRef `json:"caCert"`
			} `json:"tls"`
		} `json:"net"`
	} `json:"spec"`
}

type rawSecretRef struct {
	SecretKeyRef *struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	} `json:"secretKeyRef"`
}

func (r *rawSecretRef) name() string {
	if r == nil || r.SecretKeyRef == nil {
		return ""
	}
	return r.SecretKeyRef.Name
}

type rawKafkaSink struct {
	Spec struct {
		Topic            string   `json:"topic"`
		BootstrapServers []string `json:"bootstrapServers"`
		ContentMode      string   `json:"contentMode"`
		Auth             *struct {
			Secret *struct {
				Ref *struct {
					Name string `json:"name"`
				} `json:"ref"`
			} `json:"secret"`
		} `json:"auth"`
	} `json:"spec"`
}

// fieldError is an error about one field of one object.
func fieldError(o Object, field, format string, args ...any) error {
	return fmt.Errorf("%s: %s %q: field %s: %s", o.File, o.Kind, o.Name, field, fmt.Sprintf(format, args...))
}

func (m *Manifests) parseFile(file string, data []byte) error {
	docs, err := SplitDocuments(file, data)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if err := m.parseDocument(d); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manifests) parseDocument(d Document) error {
	var h rawHeader
	if err := json.Unmarshal(d.JSON, &h); err != nil {
		return fmt.Errorf("%s: document %d: apiVersion, kind or metadata: %v", d.File, d.Index+1, typeError(err))
	}
	if h.APIVersion == "" || h.Kind == "" {
		return fmt.Errorf("%s: document %d: apiVersion and kind are required", d.File, d.Index+1)
	}
	o := Object{File: d.File, Kind: h.Kind, Name: h.Metadata.Name, Namespace: h.Metadata.Namespace}
	if o.Name == "" {
		return fmt.Errorf("%s: %s (document %d): field metadata.name: required", d.File, h.Kind, d.Index+1)
	}
	if !dns1123Label.MatchString(o.Name) || len(o.Name) > 63 {
		return fieldError(o, "metadata.name", "must be a DNS label (lower case letters, digits, '-', at most 63)")
	}
	group, _, _ := strings.Cut(h.APIVersion, "/")
	if !strings.Contains(h.APIVersion, "/") {
		group = ""
	}
	decode := func(v any) error {
		if err := json.Unmarshal(d.JSON, v); err != nil {
			return fmt.Errorf("%s: %s %q: %v", d.File, h.Kind, o.Name, typeError(err))
		}
		return nil
	}
	switch {
	case h.APIVersion == "v1" && h.Kind == "ServiceAccount":
		m.ServiceAccounts = append(m.ServiceAccounts, ServiceAccount{Object: o, AutomountToken: h.AutomountServiceAccountToken})
	case h.APIVersion == "v1" && h.Kind == "ConfigMap":
		m.ConfigMaps = append(m.ConfigMaps, ConfigMap{Object: o, Data: h.Data})
	case h.APIVersion == "networking.k8s.io/v1" && h.Kind == "NetworkPolicy":
		m.NetworkPolicies = append(m.NetworkPolicies, o)
	case h.APIVersion == "batch/v1" && h.Kind == "Job":
		j, err := convertJob(o, d.JSON)
		if err != nil {
			return err
		}
		m.Jobs = append(m.Jobs, j)
	case ignoredKinds[h.APIVersion+"/"+h.Kind]:
		return nil
	case h.APIVersion == "serving.knative.dev/v1" && h.Kind == "Service":
		var r rawService
		if err := decode(&r); err != nil {
			return err
		}
		s, err := convertService(o, r)
		if err != nil {
			return err
		}
		m.Services = append(m.Services, s)
	case h.APIVersion == "eventing.knative.dev/v1" && h.Kind == "Broker":
		var r rawBroker
		if err := decode(&r); err != nil {
			return err
		}
		del, err := convertDelivery(o, "spec.delivery", r.Spec.Delivery)
		if err != nil {
			return err
		}
		b := Broker{Object: o, Class: h.Metadata.Annotations[AnnotationBrokerClass],
			ExternalTopic: h.Metadata.Annotations[AnnotationExternalTopic], Delivery: del}
		if c := r.Spec.Config; c != nil {
			b.Config = &Ref{APIVersion: c.APIVersion, Kind: c.Kind, Name: c.Name, Namespace: c.Namespace}
			if b.Config.Namespace == "" {
				b.Config.Namespace = o.Namespace
			}
		}
		m.Brokers = append(m.Brokers, b)
	case h.APIVersion == "eventing.knative.dev/v1" && h.Kind == "Trigger":
		var r rawTrigger
		if err := decode(&r); err != nil {
			return err
		}
		t := Trigger{Object: o, Broker: r.Spec.Broker, Filter: map[string]string{},
			DeliveryOrder: h.Metadata.Annotations[AnnotationDeliveryOrder]}
		if t.Broker == "" {
			return fieldError(o, "spec.broker", "required")
		}
		if r.Spec.Filter != nil {
			for k, v := range r.Spec.Filter.Attributes {
				t.Filter[k] = v
			}
		}
		var err error
		if t.Subscriber, err = convertDestination(o, "spec.subscriber", &r.Spec.Subscriber); err != nil {
			return err
		}
		if t.Delivery, err = convertDelivery(o, "spec.delivery", r.Spec.Delivery); err != nil {
			return err
		}
		m.Triggers = append(m.Triggers, t)
	case group == "sources.knative.dev" && h.Kind == "PingSource":
		var r rawPingSource
		if err := decode(&r); err != nil {
			return err
		}
		p := PingSource{Object: o, Schedule: r.Spec.Schedule, Timezone: r.Spec.Timezone, ContentType: r.Spec.ContentType}
		if p.Schedule == "" {
			p.Schedule = "* * * * *"
		}
		switch {
		case r.Spec.Data != "" && r.Spec.DataBase64 != "":
			return fieldError(o, "spec.dataBase64", "data and dataBase64 are mutually exclusive")
		case r.Spec.DataBase64 != "":
			b, err := base64.StdEncoding.DecodeString(r.Spec.DataBase64)
			if err != nil {
				return fieldError(o, "spec.dataBase64", "not base64: %v", err)
			}
			p.Data = b
		case r.Spec.Data != "":
			p.Data = []byte(r.Spec.Data)
		}
		var err error
		if p.Sink, err = convertDestination(o, "spec.sink", &r.Spec.Sink); err != nil {
			return err
		}
		m.PingSources = append(m.PingSources, p)
	case group == "sources.knative.dev" && h.Kind == "KafkaSource":
		var r rawKafkaSource
		if err := decode(&r); err != nil {
			return err
		}
		k := KafkaSource{Object: o, Topics: r.Spec.Topics, ConsumerGroup: r.Spec.ConsumerGroup,
			BootstrapServers: r.Spec.BootstrapServers, InitialOffset: r.Spec.InitialOffset}
		if n := r.Spec.Net; n != nil {
			if n.SASL != nil {
				k.SASL = n.SASL.Enable
				k.SASLSecrets = append(k.SASLSecrets, n.SASL.User.name(), n.SASL.Password.name(), n.SASL.Type.name())
			}
			if n.TLS != nil {
				k.TLS = n.TLS.Enable
				k.SASLSecrets = append(k.SASLSecrets, n.TLS.CACert.name())
			}
		}
		if r.Spec.CEOverrides != nil {
			for name, v := range r.Spec.CEOverrides.Extensions {
				if !ceExtensionName(name) {
					return fieldError(o, "spec.ceOverrides.extensions."+name, "an extension name is 1 to 20 lowercase letters or digits (CloudEvents)")
				}
				if k.CEOverrides == nil {
					k.CEOverrides = map[string]string{}
				}
				k.CEOverrides[name] = v
			}
		}
		if len(k.Topics) == 0 {
			return fieldError(o, "spec.topics", "at least one topic is required")
		}
		for i, t := range k.Topics {
			if t == "" {
				return fieldError(o, fmt.Sprintf("spec.topics[%d]", i), "empty topic name")
			}
		}
		switch k.InitialOffset {
		case "":
			k.InitialOffset = "latest"
		case "earliest", "latest":
		default:
			return fieldError(o, "spec.initialOffset", "must be earliest or latest, got %q", k.InitialOffset)
		}
		if k.ConsumerGroup == "" {
			return fieldError(o, "spec.consumerGroup", "required (one consumer group per function)")
		}
		var err error
		if k.Sink, err = convertDestination(o, "spec.sink", &r.Spec.Sink); err != nil {
			return err
		}
		if k.Delivery, err = convertDelivery(o, "spec.delivery", r.Spec.Delivery); err != nil {
			return err
		}
		m.KafkaSources = append(m.KafkaSources, k)
	case h.APIVersion == KafkaSinkAPIVersion && h.Kind == "KafkaSink":
		var r rawKafkaSink
		if err := decode(&r); err != nil {
			return err
		}
		if r.Spec.Topic == "" {
			return fieldError(o, "spec.topic", "required")
		}
		ks := KafkaSink{Object: o, Topic: r.Spec.Topic,
			BootstrapServers: r.Spec.BootstrapServers, ContentMode: r.Spec.ContentMode}
		if a := r.Spec.Auth; a != nil && a.Secret != nil && a.Secret.Ref != nil {
			ks.AuthSecret = a.Secret.Ref.Name
		}
		m.KafkaSinks = append(m.KafkaSinks, ks)
	default:
		return fmt.Errorf("%s: %s %q: unsupported apiVersion/kind %s %s", d.File, h.Kind, o.Name, h.APIVersion, h.Kind)
	}
	return nil
}

// typeError turns a json.UnmarshalTypeError into "field x: expected T, got V".
func typeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

func convertService(o Object, r rawService) (Service, error) {
	ts := r.Spec.Template.Spec
	s := Service{Object: o, Port: 8080, TimeoutSeconds: ts.TimeoutSeconds,
		ServiceAccountName: ts.ServiceAccountName, AutomountToken: ts.AutomountServiceAccountToken,
		Annotations: r.Spec.Template.Metadata.Annotations}
	ann := r.Spec.Template.Metadata.Annotations
	var err error
	if s.MinScale, err = scaleAnnotation(o, ann, AnnotationMinScale); err != nil {
		return s, err
	}
	if s.MaxScale, err = scaleAnnotation(o, ann, AnnotationMaxScale); err != nil {
		return s, err
	}
	if s.MaxScale > 0 && s.MinScale > s.MaxScale {
		return s, fieldError(o, "spec.template.metadata.annotations", "min-scale %d exceeds max-scale %d", s.MinScale, s.MaxScale)
	}
	cs := r.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return s, fieldError(o, "spec.template.spec.containers", "exactly one container expected, got %d", len(cs))
	}
	c := cs[0]
	if c.Image == "" {
		return s, fieldError(o, "spec.template.spec.containers[0].image", "required")
	}
	s.Image = c.Image
	if len(c.Ports) > 0 && c.Ports[0].ContainerPort != 0 {
		s.Port = c.Ports[0].ContainerPort
	}
	for i, e := range c.Env {
		field := fmt.Sprintf("spec.template.spec.containers[0].env[%d]", i)
		if e.Name == "PORT" {
			return s, fieldError(o, field+".name", "PORT is reserved: Knative sets it")
		}
		v, err := convertEnv(o, field, e)
		if err != nil {
			return s, err
		}
		s.Env = append(s.Env, v)
	}
	for _, p := range []struct {
		kind string
		raw  *rawProbe
		path *string
	}{{"readiness", c.ReadinessProbe, &s.ReadinessPath}, {"liveness", c.LivenessProbe, &s.LivenessPath}} {
		if p.raw == nil {
			continue
		}
		probe := Probe{Kind: p.kind, PeriodSeconds: p.raw.PeriodSeconds, TimeoutSeconds: p.raw.TimeoutSeconds,
			FailureThreshold: p.raw.FailureThreshold}
		if p.raw.HTTPGet != nil {
			probe.Path = p.raw.HTTPGet.Path
			*p.path = probe.Path
		}
		s.Probes = append(s.Probes, probe)
	}
	return s, nil
}

// convertEnv converts one env entry (at field, for errors).
func convertEnv(o Object, field string, e rawEnvVar) (EnvVar, error) {
	if e.Name == "" {
		return EnvVar{}, fieldError(o, field+".name", "required")
	}
	v := EnvVar{Name: e.Name, Value: e.Value}
	if e.ValueFrom != nil {
		switch {
		case e.ValueFrom.ConfigMapKeyRef != nil:
			v.From = &EnvSource{Kind: "ConfigMap", Name: e.ValueFrom.ConfigMapKeyRef.Name, Key: e.ValueFrom.ConfigMapKeyRef.Key}
		case e.ValueFrom.SecretKeyRef != nil:
			v.From = &EnvSource{Kind: "Secret", Name: e.ValueFrom.SecretKeyRef.Name, Key: e.ValueFrom.SecretKeyRef.Key}
		default:
			return v, fieldError(o, field+".valueFrom", "only configMapKeyRef and secretKeyRef are supported")
		}
	}
	return v, nil
}

// convertJob decodes a batch/v1 Job strictly (rawJob) into a Job.
func convertJob(o Object, data []byte) (Job, error) {
	var r rawJob
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Job{}, fmt.Errorf("%s: %s %q: %v (a Job has no CRD schema: the loader knows the fields of rawJob, add a new one there)", o.File, o.Kind, o.Name, typeError(err))
	}
	ps := r.Spec.Template.Spec
	j := Job{Object: o, BackoffLimit: r.Spec.BackoffLimit, ActiveDeadlineSeconds: r.Spec.ActiveDeadlineSeconds,
		TTLSecondsAfterFinished: r.Spec.TTLSecondsAfterFinished, RestartPolicy: ps.RestartPolicy,
		ServiceAccountName: ps.ServiceAccountName, AutomountToken: ps.AutomountServiceAccountToken}
	if sc := ps.SecurityContext; sc != nil {
		j.RunAsNonRoot = sc.RunAsNonRoot
		if sc.SeccompProfile != nil {
			j.SeccompProfile = sc.SeccompProfile.Type
		}
	}
	if len(ps.Containers) == 0 {
		return j, fieldError(o, "spec.template.spec.containers", "at least one container is required")
	}
	for _, list := range []struct {
		field string
		init  bool
		cs    []rawContainer
	}{{"spec.template.spec.initContainers", true, ps.InitContainers}, {"spec.template.spec.containers", false, ps.Containers}} {
		for i, rc := range list.cs {
			c := Container{Field: fmt.Sprintf("%s[%d]", list.field, i), Init: list.init, Name: rc.Name, Image: rc.Image,
				Args: rc.Args, Requests: rc.Resources.Requests, Limits: rc.Resources.Limits}
			if c.Name == "" {
				return j, fieldError(o, c.Field+".name", "required")
			}
			if c.Image == "" {
				return j, fieldError(o, c.Field+".image", "required")
			}
			if sc := rc.SecurityContext; sc != nil {
				c.RunAsNonRoot, c.ReadOnlyRootFilesystem, c.AllowPrivilegeEscalation = sc.RunAsNonRoot, sc.ReadOnlyRootFilesystem, sc.AllowPrivilegeEscalation
				if sc.Capabilities != nil {
					c.DropCapabilities = sc.Capabilities.Drop
				}
			}
			for k, e := range rc.Env {
				v, err := convertEnv(o, fmt.Sprintf("%s.env[%d]", c.Field, k), e)
				if err != nil {
					return j, err
				}
				c.Env = append(c.Env, v)
			}
			j.Containers = append(j.Containers, c)
		}
	}
	return j, nil
}

func scaleAnnotation(o Object, ann map[string]string, key string) (int, error) {
	v, ok := ann[key]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fieldError(o, "spec.template.metadata.annotations."+key, "must be a non-negative integer, got %q", v)
	}
	return n, nil
}

func convertDestination(o Object, field string, r *rawDestination) (Destination, error) {
	if r == nil || (r.Ref == nil && r.URI == "") {
		return Destination{}, fieldError(o, field, "ref or uri required")
	}
	d := Destination{URI: r.URI, Audience: r.Audience}
	if r.Ref != nil {
		if r.Ref.Kind == "" || r.Ref.Name == "" {
			return d, fieldError(o, field+".ref", "kind and name are required")
		}
		ns := r.Ref.Namespace
		if ns == "" {
			ns = o.Namespace
		}
		d.Ref = &Ref{APIVersion: r.Ref.APIVersion, Kind: r.Ref.Kind, Name: r.Ref.Name, Namespace: ns}
	} else if !strings.Contains(r.URI, "://") {
		return d, fieldError(o, field+".uri", "must be absolute when there is no ref, got %q", r.URI)
	}
	return d, nil
}

func convertDelivery(o Object, field string, r *rawDelivery) (*Delivery, error) {
	if r == nil {
		return nil, nil
	}
	d := &Delivery{BackoffPolicy: BackoffExponential}
	if r.Retry != nil {
		if *r.Retry < 0 {
			return nil, fieldError(o, field+".retry", "must not be negative, got %d", *r.Retry)
		}
		d.Retry = *r.Retry
	}
	switch BackoffPolicy(r.BackoffPolicy) {
	case "":
	case BackoffLinear, BackoffExponential:
		d.BackoffPolicy = BackoffPolicy(r.BackoffPolicy)
	default:
		return nil, fieldError(o, field+".backoffPolicy", "must be linear or exponential, got %q", r.BackoffPolicy)
	}
	var err error
	if r.BackoffDelay != "" {
		if d.BackoffDelay, err = ParseDuration(r.BackoffDelay); err != nil {
			return nil, fieldError(o, field+".backoffDelay", "%v", err)
		}
	}
	if r.Timeout != "" {
		if d.Timeout, err = ParseDuration(r.Timeout); err != nil {
			return nil, fieldError(o, field+".timeout", "%v", err)
		}
		if d.Timeout == 0 {
			return nil, fieldError(o, field+".timeout", "must be greater than 0")
		}
	}
	if r.DeadLetterSink != nil {
		dls, err := convertDestination(o, field+".deadLetterSink", r.DeadLetterSink)
		if err != nil {
			return nil, err
		}
		d.DeadLetterSink = &dls
	}
	return d, nil
}

// check verifies the references between objects and that names are unique per kind.
func (m *Manifests) check() error {
	seen := map[string]Object{}
	unique := func(o Object) error {
		k := o.Kind + "/" + o.Namespace + "/" + o.Name
		if prev, dup := seen[k]; dup {
			return fmt.Errorf("%s: %s %q: also defined in %s", o.File, o.Kind, o.Name, prev.File)
		}
		seen[k] = o
		return nil
	}
	for _, s := range m.Services {
		if err := unique(s.Object); err != nil {
			return err
		}
	}
	for _, b := range m.Brokers {
		if err := unique(b.Object); err != nil {
			return err
		}
		if err := m.checkDelivery(b.Object, "spec.delivery", b.Delivery); err != nil {
			return err
		}
	}
	for _, s := range m.KafkaSinks {
		if err := unique(s.Object); err != nil {
			return err
		}
	}
	for _, j := range m.Jobs {
		if err := unique(j.Object); err != nil {
			return err
		}
	}
	for _, t := range m.Triggers {
		if err := unique(t.Object); err != nil {
			return err
		}
		if _, ok := m.Broker(t.Broker); !ok {
			return fieldError(t.Object, "spec.broker", "no Broker named %q", t.Broker)
		}
		if err := m.checkService(t.Object, "spec.subscriber", t.Subscriber); err != nil {
			return err
		}
		if err := m.checkDelivery(t.Object, "spec.delivery", t.Delivery); err != nil {
			return err
		}
	}
	for _, p := range m.PingSources {
		if err := unique(p.Object); err != nil {
			return err
		}
		if err := m.checkService(p.Object, "spec.sink", p.Sink); err != nil {
			return err
		}
	}
	for _, k := range m.KafkaSources {
		if err := unique(k.Object); err != nil {
			return err
		}
		if err := m.checkService(k.Object, "spec.sink", k.Sink); err != nil {
			return err
		}
		if err := m.checkDelivery(k.Object, "spec.delivery", k.Delivery); err != nil {
			return err
		}
	}
	return nil
}

// checkService checks that a sink refers to a Service of these manifests.
func (m *Manifests) checkService(o Object, field string, d Destination) error {
	if d.Ref == nil {
		return nil // an absolute URI outside the manifests
	}
	if d.Ref.Kind != "Service" || !strings.HasPrefix(d.Ref.APIVersion, "serving.knative.dev/") {
		return fieldError(o, field+".ref", "must refer to a serving.knative.dev Service, got %s %s", d.Ref.APIVersion, d.Ref.Kind)
	}
	if _, ok := m.Service(d.Ref.Name); !ok {
		return fieldError(o, field+".ref.name", "no Service named %q", d.Ref.Name)
	}
	return nil
}

func (m *Manifests) checkDelivery(o Object, field string, d *Delivery) error {
	if d == nil || d.DeadLetterSink == nil || d.DeadLetterSink.Ref == nil {
		return nil
	}
	ref := d.DeadLetterSink.Ref
	switch ref.Kind {
	case "KafkaSink":
		if ref.APIVersion != KafkaSinkAPIVersion {
			return fieldError(o, field+".deadLetterSink.ref.apiVersion", "must be %s for a KafkaSink, got %q", KafkaSinkAPIVersion, ref.APIVersion)
		}
		if _, ok := m.KafkaSink(ref.Name); !ok {
			return fieldError(o, field+".deadLetterSink.ref.name", "no KafkaSink named %q", ref.Name)
		}
	case "Service":
		return m.checkService(o, field+".deadLetterSink", *d.DeadLetterSink)
	default:
		return fieldError(o, field+".deadLetterSink.ref.kind", "must be KafkaSink or Service, got %q", ref.Kind)
	}
	return nil
}

// FunctionName returns the function a Service runs, from its ko:// image path
// (ko://github.com/myscrollr/connect/functions/<name>), or "" when the image is not one.
func (s Service) FunctionName() string {
	const prefix = "ko://github.com/myscrollr/connect/functions/"
	name, ok := strings.CutPrefix(s.Image, prefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// ServiceNames returns the names of the Services, sorted.
func (m *Manifests) ServiceNames() []string {
	names := make([]string, 0, len(m.Services))
	for _, s := range m.Services {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return names
}

// ceExtensionName reports whether name is a CloudEvents extension attribute name: lowercase
// letters and digits, at most 20 of them (the spec's limit for portable names), and not an
// attribute the spec defines.
func ceExtensionName(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	switch name {
	case "id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time", "data", "data_base64":
		return false
	}
	return true
}
