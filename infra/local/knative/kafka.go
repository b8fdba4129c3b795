package knative

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// StrimziAPIVersion is the apiVersion of the Strimzi KafkaTopic and KafkaUser manifests of
// infra/kafka (Strimzi 0.49 introduced v1; v1beta2 is removed in Strimzi 1.0).
const StrimziAPIVersion = "kafka.strimzi.io/v1"

// Kafka is what LoadKafka read: the topics and users of infra/kafka.
type Kafka struct {
	Topics []KafkaTopic
	Users  []KafkaUser
}

// KafkaTopic is a Strimzi KafkaTopic.
type KafkaTopic struct {
	Object
	TopicName  string // spec.topicName, else metadata.name
	Partitions int
	Replicas   int
	Config     map[string]string
}

// KafkaUser is a Strimzi KafkaUser with simple authorization.
type KafkaUser struct {
	Object
	Authentication string // spec.authentication.type
	ACLs           []ACL
}

// ACL is one rule of a KafkaUser.
type ACL struct {
	Type        string // topic, group, cluster, transactionalId
	Name        string
	PatternType string // literal (default) or prefix
	Operations  []string
}

// Topic returns the KafkaTopic whose topic is name.
func (k *Kafka) Topic(name string) (KafkaTopic, bool) {
	for _, t := range k.Topics {
		if t.TopicName == name {
			return t, true
		}
	}
	return KafkaTopic{}, false
}

// User returns the KafkaUser named name.
func (k *Kafka) User(name string) (KafkaUser, bool) {
	for _, u := range k.Users {
		if u.Name == name {
			return u, true
		}
	}
	return KafkaUser{}, false
}

// Allows reports whether the user may do op on the resource of type typ named name.
func (u KafkaUser) Allows(typ, name, op string) bool {
	for _, a := range u.ACLs {
		match := a.Name == name || a.Name == "*" || (a.PatternType == "prefix" && strings.HasPrefix(name, a.Name))
		if a.Type == typ && match && (slices.Contains(a.Operations, op) || slices.Contains(a.Operations, "All")) {
			return true
		}
	}
	return false
}

type rawStrimzi struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   rawMeta         `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

type rawKafkaTopic struct {
	TopicName  string            `json:"topicName"`
	Partitions int               `json:"partitions"`
	Replicas   int               `json:"replicas"`
	Config     map[string]string `json:"config"`
}

type rawKafkaUser struct {
	Authentication struct {
		Type string `json:"type"`
	} `json:"authentication"`
	Authorization struct {
		Type string `json:"type"`
		ACLs []struct {
			Resource struct {
				Type        string `json:"type"`
				Name        string `json:"name"`
				PatternType string `json:"patternType"`
			} `json:"resource"`
			Operations []string `json:"operations"`
			Host       string   `json:"host"`
		} `json:"acls"`
	} `json:"authorization"`
}

// strictDecode decodes a spec refusing fields it does not know: a misspelt field in a
// KafkaTopic or KafkaUser would otherwise be dropped silently by this check (the API server
// refuses it too, the Strimzi CRDs being structural).
func strictDecode(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

var (
	aclTypes      = []string{"topic", "group", "cluster", "transactionalId"}
	aclOperations = []string{"Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
		"AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All"}
)

// LoadKafka reads the Strimzi KafkaTopic and KafkaUser manifests of dir. Any other kind is an
// error, as are unknown fields, a topic without partitions or replicas, duplicate topics, and
// ACLs with an unknown resource type, pattern type or operation.
func LoadKafka(dir string) (*Kafka, error) {
	k := &Kafka{}
	var errs []error
	err := eachManifest(dir, func(name string, data []byte) error {
		docs, err := SplitDocuments(name, data)
		if err != nil {
			return err
		}
		for _, d := range docs {
			if err := k.parse(d); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, t := range k.Topics {
		if prev, dup := seen[t.TopicName]; dup {
			errs = append(errs, fieldError(t.Object, "spec.topicName", "topic %q is also declared by %s", t.TopicName, prev))
		}
		seen[t.TopicName] = t.File + " " + t.Name
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Kafka) parse(d Document) error {
	var h rawStrimzi
	if err := json.Unmarshal(d.JSON, &h); err != nil {
		return fmt.Errorf("%s: document %d: %v", d.File, d.Index+1, typeError(err))
	}
	o := Object{File: d.File, Kind: h.Kind, Name: h.Metadata.Name, Namespace: h.Metadata.Namespace}
	if h.APIVersion != StrimziAPIVersion || (h.Kind != "KafkaTopic" && h.Kind != "KafkaUser") {
		return fmt.Errorf("%s: %s %q: want %s KafkaTopic or KafkaUser, got %s %s", d.File, h.Kind, o.Name, StrimziAPIVersion, h.APIVersion, h.Kind)
	}
	if !dns1123Label.MatchString(o.Name) {
		return fieldError(o, "metadata.name", "must be a DNS label")
	}
	if o.Namespace == "" {
		return fieldError(o, "metadata.namespace", "required: the namespace the Strimzi operators watch")
	}
	var cluster string
	var labels struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(d.JSON, &labels); err == nil {
		cluster = labels.Metadata.Labels["strimzi.io/cluster"]
	}
	if cluster == "" {
		return fieldError(o, "metadata.labels[strimzi.io/cluster]", "required: the Kafka cluster the operator manages")
	}
	switch h.Kind {
	case "KafkaTopic":
		var r rawKafkaTopic
		if err := strictDecode(h.Spec, &r); err != nil {
			return fieldError(o, "spec", "%v", typeError(err))
		}
		t := KafkaTopic{Object: o, TopicName: r.TopicName, Partitions: r.Partitions, Replicas: r.Replicas, Config: r.Config}
		if t.TopicName == "" {
			t.TopicName = o.Name
		}
		if t.Partitions < 1 {
			return fieldError(o, "spec.partitions", "must be at least 1, got %d", t.Partitions)
		}
		if t.Replicas < 1 {
			return fieldError(o, "spec.replicas", "must be at least 1, got %d", t.Replicas)
		}
		k.Topics = append(k.Topics, t)
	case "KafkaUser":
		var r rawKafkaUser
		if err := strictDecode(h.Spec, &r); err != nil {
			return fieldError(o, "spec", "%v", typeError(err))
		}
		if r.Authorization.Type != "simple" {
			return fieldError(o, "spec.authorization.type", "must be simple (ACLs), got %q", r.Authorization.Type)
		}
		u := KafkaUser{Object: o, Authentication: r.Authentication.Type}
		for i, a := range r.Authorization.ACLs {
			field := fmt.Sprintf("spec.authorization.acls[%d]", i)
			acl := ACL{Type: a.Resource.Type, Name: a.Resource.Name, PatternType: a.Resource.PatternType, Operations: a.Operations}
			if acl.PatternType == "" {
				acl.PatternType = "literal"
			}
			switch {
			case !slices.Contains(aclTypes, acl.Type):
				return fieldError(o, field+".resource.type", "must be one of %s, got %q", strings.Join(aclTypes, ", "), acl.Type)
			case acl.PatternType != "literal" && acl.PatternType != "prefix":
				return fieldError(o, field+".resource.patternType", "must be literal or prefix, got %q", acl.PatternType)
			case acl.Type != "cluster" && acl.Name == "":
				return fieldError(o, field+".resource.name", "required")
			case len(acl.Operations) == 0:
				return fieldError(o, field+".operations", "at least one operation")
			}
			for _, op := range acl.Operations {
				if !slices.Contains(aclOperations, op) {
					return fieldError(o, field+".operations", "unknown operation %q", op)
				}
			}
			u.ACLs = append(u.ACLs, acl)
		}
		k.Users = append(k.Users, u)
	}
	return nil
}

// CheckDurability checks every topic against the platform's durability rules: replicas
// 3 and min.insync.replicas 2 (an acknowledged record survives one broker lost, and writes go
// on), and a retention.ms set on purpose.
func (k *Kafka) CheckDurability() error {
	var errs []error
	for _, t := range k.Topics {
		if t.Replicas != 3 {
			errs = append(errs, fieldError(t.Object, "spec.replicas", "must be 3, got %d", t.Replicas))
		}
		if v := t.Config["min.insync.replicas"]; v != "2" {
			errs = append(errs, fieldError(t.Object, "spec.config[min.insync.replicas]", "must be \"2\", got %q", v))
		}
		if n, err := strconv.ParseInt(t.Config["retention.ms"], 10, 64); err != nil || n < 1 {
			errs = append(errs, fieldError(t.Object, "spec.config[retention.ms]", "must be a positive number of milliseconds, got %q", t.Config["retention.ms"]))
		}
	}
	return errors.Join(errs...)
}

// KafkaUserForSecret is the KafkaUser whose credentials infra/secrets/create.sh puts into the
// Secret secret: connect-kafka-<x> holds KafkaUser connect-<x>.
func KafkaUserForSecret(secret string) string {
	if x, ok := strings.CutPrefix(secret, "connect-kafka-"); ok {
		return "connect-" + x
	}
	return ""
}

// CheckACLs checks that each Kafka client can do its job with its user's ACLs and no user
// names a topic that is not declared: the Kafka Broker's user reads and writes its external
// topic and reads its Triggers' consumer groups (knative-trigger-<namespace>-<trigger>), each
// KafkaSink's user writes its topic, each KafkaSource's user reads its topics in its group, and
// the relay's user (relayUser) writes relayTopics.
func (k *Kafka) CheckACLs(m *Manifests, relayUser string, relayTopics []string) error {
	var errs []error
	need := func(where string, secret, typ, name, op string) {
		if secret == "" {
			return // no credentials at all: CheckKafkaAuth reports it
		}
		user := KafkaUserForSecret(secret)
		u, ok := k.User(user)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: Secret %q: no KafkaUser %q in infra/kafka", where, secret, user))
		case !u.Allows(typ, name, op):
			errs = append(errs, fmt.Errorf("%s: KafkaUser %q may not %s %s %q", where, user, op, typ, name))
		}
	}
	for _, b := range m.Brokers {
		if b.ExternalTopic == "" || b.Config == nil {
			continue
		}
		i := slices.IndexFunc(m.ConfigMaps, func(c ConfigMap) bool { return c.Name == b.Config.Name && c.Namespace == b.Config.Namespace })
		if i < 0 {
			continue
		}
		secret := m.ConfigMaps[i].Data["auth.secret.ref.name"]
		where := fmt.Sprintf("%s: Broker %q", b.File, b.Name)
		for _, op := range []string{"Read", "Write", "Describe"} {
			need(where, secret, "topic", b.ExternalTopic, op)
		}
		for _, t := range m.Triggers {
			if t.Broker == b.Name {
				need(where+" Trigger "+t.Name, secret, "group", "knative-trigger-"+t.Namespace+"-"+t.Name, "Read")
			}
		}
	}
	for _, s := range m.KafkaSinks {
		need(fmt.Sprintf("%s: KafkaSink %q", s.File, s.Name), s.AuthSecret, "topic", s.Topic, "Write")
	}
	for _, src := range m.KafkaSources {
		where := fmt.Sprintf("%s: KafkaSource %q", src.File, src.Name)
		secret := ""
		if len(src.SASLSecrets) > 0 {
			secret = src.SASLSecrets[0]
		}
		for _, t := range src.Topics {
			need(where, secret, "topic", t, "Read")
		}
		need(where, secret, "group", src.ConsumerGroup, "Read")
	}
	for _, t := range relayTopics {
		need("relay", "connect-kafka-"+strings.TrimPrefix(relayUser, "connect-"), "topic", t, "Write")
	}
	for _, u := range k.Users {
		for i, a := range u.ACLs {
			if a.Type == "topic" && a.PatternType == "literal" && a.Name != "*" {
				if _, ok := k.Topic(a.Name); !ok {
					errs = append(errs, fieldError(u.Object, fmt.Sprintf("spec.authorization.acls[%d].resource.name", i), "topic %q is not declared", a.Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}
