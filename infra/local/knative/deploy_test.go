package knative

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/shared/outbox"
)

const kafkaDir = "../../kafka" // Strimzi KafkaTopics and KafkaUsers

// relayTopics are the topics the relay writes, from its defaults: the outbox's default topic,
// the platform's topics (events), their dead-letter topics (the relay sends rows it cannot turn
// into CloudEvents to <topic>.dlq) and its fallback dead-letter topic (functions/relay/event.go
// fallbackDLQ, read from the source since package main cannot be imported).
func relayTopics(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(functionsDir, "relay", "event.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fallback := ""
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && vs.Names[0].Name == "fallbackDLQ" && len(vs.Values) == 1 {
			if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
				fallback, _ = strconv.Unquote(lit.Value)
			}
		}
		return true
	})
	if fallback == "" {
		t.Fatalf("%s: constant fallbackDLQ not found: the relay's topics changed, update this test", path)
	}
	topics := []string{outbox.DefaultTopic, events.TopicEvents, events.TopicData, fallback}
	for _, tp := range []string{outbox.DefaultTopic, events.TopicEvents, events.TopicData} {
		topics = append(topics, events.DLQ(tp))
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// relayUses are relayTopics as TopicUses.
func relayUses(topics []string) []TopicUse {
	var out []TopicUse
	for _, tp := range topics {
		out = append(out, TopicUse{Topic: tp, By: "functions/relay (defaults)"})
	}
	return out
}

const repoRoot = "../../.." // where ko:// import paths below github.com/myscrollr/connect live

// deployment is everything the checks read.
type deployment struct {
	m       *Manifests
	k       *Kafka
	kinds   APIKinds
	relay   []string
	orders  map[string]string
	root    string // the repository, for the Jobs' images
	secrets string // infra/secrets/README.md
}

func loadDeployment(t *testing.T, dirs ...string) deployment {
	t.Helper()
	m, err := Load(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadKafka(kafkaDir)
	if err != nil {
		t.Fatal(err)
	}
	kinds, err := KindsFromCRDs(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	return deployment{m: m, k: k, kinds: kinds, relay: relayTopics(t), orders: DeliveryOrders,
		root: repoRoot, secrets: readSecretsList(t)}
}

// checks are the deployment checks by name, each returning every mistake it finds.
var checks = []struct {
	name string
	run  func(d deployment) error
}{
	{"refs", func(d deployment) error { return d.m.CheckRefs(d.kinds) }},
	{"topics", func(d deployment) error {
		return CheckTopics(d.k, append(d.m.TopicsUsed(), relayUses(d.relay)...))
	}},
	{"durability", func(d deployment) error { return d.k.CheckDurability() }},
	{"acls", func(d deployment) error { return d.k.CheckACLs(d.m, "connect-relay", d.relay) }},
	{"order", func(d deployment) error { return d.m.CheckDeliveryOrder(d.orders) }},
	{"probes", func(d deployment) error { return d.m.CheckProbes() }},
	{"drain", func(d deployment) error { return d.m.CheckDrain() }},
	{"access", func(d deployment) error { return d.m.CheckAccess() }},
	{"kafka-auth", func(d deployment) error {
		return errors.Join(d.m.CheckKafkaAuth(), d.m.CheckServiceKafkaAuth("relay", "connect-relay"))
	}},
	{"earliest", func(d deployment) error { return d.m.CheckEarliestOffset() }},
	{"job-images", func(d deployment) error { return d.m.CheckJobImages(d.root) }},
	{"jobs", func(d deployment) error { return d.m.CheckJobs() }},
	{"job-order", func(d deployment) error { return d.m.CheckJobOrder(MigrateImage) }},
	{"job-settings", func(d deployment) error { return d.m.CheckJobSettings() }},
	{"secrets", func(d deployment) error { return unlistedSecrets(d.m, d.secrets) }},
}

// TestDeploymentChecks runs every check on infra/knative alone (what skaffold applies) and
// together with infra/knative-pending (what capability work copies), with infra/kafka.
func TestDeploymentChecks(t *testing.T) {
	for _, dirs := range [][]string{{manifestDir}, {manifestDir, pendingDir}} {
		d := loadDeployment(t, dirs...)
		for _, c := range checks {
			if err := c.run(d); err != nil {
				t.Errorf("%v: %s:\n%v", dirs, c.name, err)
			}
		}
	}
	// The checks saw something: the relay writes declared topics, Triggers exist, ordered ones too.
	d := loadDeployment(t, manifestDir, pendingDir)
	if len(d.relay) < 5 || len(d.m.Triggers) == 0 || len(d.k.Topics) < 6 || len(d.k.Users) < 4 {
		t.Fatalf("relay topics %v, %d triggers, %d topics, %d users", d.relay, len(d.m.Triggers), len(d.k.Topics), len(d.k.Users))
	}
	if !slices.ContainsFunc(d.m.Triggers, func(tr Trigger) bool { return tr.DeliveryOrder == Ordered }) {
		t.Fatal("no ordered Trigger")
	}
	// Both Jobs: the migration, and the relay's slot waiting for it.
	var jobs []string
	for _, j := range d.m.Jobs {
		jobs = append(jobs, j.Name)
	}
	if !slices.Equal(jobs, []string{"connect-migrate", "connect-relay-setup"}) {
		t.Fatalf("jobs = %v", jobs)
	}
	// The kind table comes from the CRDs: KafkaSink is served only as eventing.knative.dev/v1alpha1.
	if got := d.kinds["KafkaSink"]; !slices.Equal(got, []string{KafkaSinkAPIVersion}) {
		t.Fatalf("KafkaSink served as %v", got)
	}
}

// TestDeploymentChecksCatchMistakes plants one mistake per case in the repository's manifests
// (after loading, or in infra/kafka before loading) and expects exactly the named check to
// report it, naming the field.
func TestDeploymentChecksCatchMistakes(t *testing.T) {
	svc := func(d deployment, name string) *Service {
		for i := range d.m.Services {
			if d.m.Services[i].Name == name {
				return &d.m.Services[i]
			}
		}
		t.Fatalf("no Service %s", name)
		return nil
	}
	trigger := func(d deployment, name string) *Trigger {
		for i := range d.m.Triggers {
			if d.m.Triggers[i].Name == name {
				return &d.m.Triggers[i]
			}
		}
		t.Fatalf("no Trigger %s", name)
		return nil
	}
	setEnv := func(s *Service, name, value string) {
		for i := range s.Env {
			if s.Env[i].Name == name {
				s.Env[i].Value = value
				return
			}
		}
		s.Env = append(s.Env, EnvVar{Name: name, Value: value})
	}
	job := func(d deployment, name string) *Job {
		for i := range d.m.Jobs {
			if d.m.Jobs[i].Name == name {
				return &d.m.Jobs[i]
			}
		}
		t.Fatalf("no Job %s", name)
		return nil
	}
	// container is the container (or init container) name of Job jobName.
	container := func(d deployment, jobName, name string) *Container {
		j := job(d, jobName)
		for i := range j.Containers {
			if j.Containers[i].Name == name {
				return &j.Containers[i]
			}
		}
		t.Fatalf("Job %s has no container %s", jobName, name)
		return nil
	}
	setEnvFrom := func(c *Container, name string, from *EnvSource) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].From = from
				return
			}
		}
		c.Env = append(c.Env, EnvVar{Name: name, From: from})
	}
	no := false
	configData := func(d deployment, name string) map[string]string {
		for i := range d.m.ConfigMaps {
			if d.m.ConfigMaps[i].Name == name {
				return d.m.ConfigMaps[i].Data
			}
		}
		t.Fatalf("no ConfigMap %s", name)
		return nil
	}
	cases := []struct {
		name, check, want string
		plant             func(d *deployment)
	}{
		{"KafkaSink of the look-alike group", "refs", `spec.delivery.deadLetterSink.ref.apiVersion: KafkaSink is served as eventing.knative.dev/v1alpha1, not "eventing.kafka.knative.dev/v1alpha1"`,
			func(d *deployment) {
				d.m.Brokers[0].Delivery.DeadLetterSink.Ref.APIVersion = "eventing.kafka.knative.dev/v1alpha1"
			}},
		{"subscriber of an old Serving version", "refs", `spec.subscriber.ref.apiVersion: Service is served as serving.knative.dev/v1`,
			func(d *deployment) {
				trigger(*d, "uninstall-user-deleted").Subscriber.Ref.APIVersion = "serving.knative.dev/v1alpha1"
			}},
		{"sink of a kind no CRD defines", "refs", `spec.sink.ref.kind: no CRD defines kind "KService"`,
			func(d *deployment) { d.m.KafkaSources[0].Sink.Ref.Kind = "KService" }},
		{"dead-letter sink that does not exist", "refs", `spec.delivery.deadLetterSink.ref.name: no KafkaSink "gone"`,
			func(d *deployment) {
				tr := trigger(*d, "uninstall-subscription-ended")
				ref := *tr.Delivery.DeadLetterSink.Ref
				ref.Name = "gone"
				tr.Delivery.DeadLetterSink = &Destination{Ref: &ref}
			}},
		{"broker config missing", "refs", `spec.config.name: no ConfigMap "connect-kafka-broker-config"`,
			func(d *deployment) {
				d.m.ConfigMaps = slices.DeleteFunc(d.m.ConfigMaps, func(c ConfigMap) bool { return c.Name == "connect-kafka-broker-config" })
			}},
		{"dead-letter topic not declared", "topics", `topic "connect.events.dlq" is not declared in infra/kafka`,
			func(d *deployment) {
				d.k.Topics = slices.DeleteFunc(d.k.Topics, func(tp KafkaTopic) bool { return tp.TopicName == "connect.events.dlq" })
			}},
		{"external topic not declared", "topics", `metadata.annotations[kafka.eventing.knative.dev/external.topic]: topic "connect.event" is not declared`,
			func(d *deployment) { d.m.Brokers[0].ExternalTopic = "connect.event" }},
		{"KafkaSource topic not declared", "topics", `spec.topics[0]: topic "integrations.other.data" is not declared`,
			func(d *deployment) { d.m.KafkaSources[0].Topics[0] = "integrations.other.data" }},
		{"relay topic not declared", "topics", `functions/relay (defaults): topic "connect.relay.dlq" is not declared`,
			func(d *deployment) {
				d.k.Topics = slices.DeleteFunc(d.k.Topics, func(tp KafkaTopic) bool { return tp.TopicName == "connect.relay.dlq" })
			}},
		{"two replicas", "durability", `KafkaTopic "connect-events": field spec.replicas: must be 3, got 2`,
			func(d *deployment) { d.k.Topics[0].Replicas = 2 }},
		{"min.insync.replicas 1", "durability", `field spec.config[min.insync.replicas]: must be "2", got "1"`,
			func(d *deployment) {
				d.k.Topics[0].Config = map[string]string{"min.insync.replicas": "1", "retention.ms": "1"}
			}},
		{"broker user cannot read its topic", "acls", `KafkaUser "connect-broker" may not Read topic "connect.events"`,
			func(d *deployment) {
				for i := range d.k.Users {
					if d.k.Users[i].Name == "connect-broker" {
						d.k.Users[i].ACLs[0].Operations = []string{"Write", "Describe"}
					}
				}
			}},
		{"relay user cannot write connect.data", "acls", `relay: KafkaUser "connect-relay" may not Write topic "connect.data"`,
			func(d *deployment) {
				for i := range d.k.Users {
					if d.k.Users[i].Name == "connect-relay" {
						d.k.Users[i].ACLs = slices.DeleteFunc(d.k.Users[i].ACLs, func(a ACL) bool { return a.Name == "connect.data" })
					}
				}
			}},
		{"sink secret without a user", "acls", `Secret "connect-kafka-nobody": no KafkaUser "connect-nobody"`,
			func(d *deployment) { d.m.KafkaSinks[0].AuthSecret = "connect-kafka-nobody" }},
		{"lifecycle delivered unordered", "order", `Trigger "notify-install-revoked": field metadata.annotations[kafka.eventing.knative.dev/delivery.order]: events of type com.myscrollr.connect.install.revoked must be delivered ordered, got unordered`,
			func(d *deployment) { trigger(*d, "notify-install-revoked").DeliveryOrder = Unordered }},
		{"install.revoked delivered unordered", "order", `must be delivered ordered, got unordered`,
			func(d *deployment) { trigger(*d, "notify-install-revoked").DeliveryOrder = Unordered }},
		{"order left unset", "order", `must be ordered or unordered (unset means unordered: say so), got ""`,
			func(d *deployment) { trigger(*d, "uninstall-user-deleted").DeliveryOrder = "" }},
		{"type with no decision", "order", `no delivery order decided for type "com.myscrollr.connect.thing.happened"`,
			func(d *deployment) {
				trigger(*d, "uninstall-user-deleted").Filter = map[string]string{"type": "com.myscrollr.connect.thing.happened"}
			}},
		{"readiness period", "probes", `Service "catalog": field spec.template.spec.containers[0].readinessProbe.periodSeconds: must be unset`,
			func(d *deployment) { svc(*d, "catalog").Probes[0].PeriodSeconds = 5 }},
		{"liveness period", "probes", `livenessProbe.periodSeconds: must be unset`,
			func(d *deployment) { svc(*d, "relay").Probes[1].PeriodSeconds = 10 }},
		{"readiness failureThreshold without a period", "probes", `failureThreshold and timeoutSeconds are refused when periodSeconds is zero`,
			func(d *deployment) { svc(*d, "uninstall").Probes[0].FailureThreshold = 3 }},
		{"runtime default drain", "drain", `Service "catalog": field spec.template.spec.timeoutSeconds: shutdown may take 2m0s`,
			func(d *deployment) {
				s := svc(*d, "catalog")
				s.Env = slices.DeleteFunc(s.Env, func(e EnvVar) bool { return e.Name == "DRAIN_TIMEOUT" || e.Name == "SHUTDOWN_TIMEOUT" })
			}},
		{"relay's Kafka drain too long", "drain", `Service "relay": field spec.template.spec.timeoutSeconds: shutdown may take 1m0s`,
			func(d *deployment) { setEnv(svc(*d, "relay"), "RELAY_DRAIN_TIMEOUT", "20s") }},
		{"timeout of 30 s", "drain", `Service "uninstall": field spec.template.spec.timeoutSeconds: shutdown may take 41s (queue-proxy 30s + DRAIN_TIMEOUT + 2 x SHUTDOWN_TIMEOUT + other drains), not less than the grace period 30s`,
			func(d *deployment) { svc(*d, "uninstall").TimeoutSeconds = 30 }},
		{"drain from a ConfigMap", "drain", `DRAIN_TIMEOUT must be a literal value`,
			func(d *deployment) {
				s := svc(*d, "logto-webhook")
				for i := range s.Env {
					if s.Env[i].Name == "DRAIN_TIMEOUT" {
						s.Env[i].From = &EnvSource{Kind: "ConfigMap", Name: "connect-config", Key: "DRAIN_TIMEOUT"}
					}
				}
			}},
		{"token mounted", "access", `Service "catalog": field spec.template.spec.automountServiceAccountToken: must be false`,
			func(d *deployment) { svc(*d, "catalog").AutomountToken = nil }},
		{"shared ServiceAccount", "access", `"function-catalog" is also used by Service "catalog"`,
			func(d *deployment) { svc(*d, "uninstall").ServiceAccountName = "function-catalog" }},
		{"ServiceAccount missing", "access", `no ServiceAccount "function-relay"`,
			func(d *deployment) {
				d.m.ServiceAccounts = slices.DeleteFunc(d.m.ServiceAccounts, func(a ServiceAccount) bool { return a.Name == "function-relay" })
			}},
		{"ServiceAccount mounts its token", "access", `ServiceAccount "function-uninstall": field automountServiceAccountToken: must be false`,
			func(d *deployment) {
				yes := true
				for i := range d.m.ServiceAccounts {
					if d.m.ServiceAccounts[i].Name == "function-uninstall" {
						d.m.ServiceAccounts[i].AutomountToken = &yes
					}
				}
			}},
		{"no NetworkPolicy", "access", `no NetworkPolicy in namespace "connect"`,
			func(d *deployment) { d.m.NetworkPolicies = nil }},
		{"broker without credentials", "kafka-auth", `ConfigMap "connect-kafka-broker-config": field data[auth.secret.ref.name]: the Broker's Kafka credentials: required`,
			func(d *deployment) {
				for i := range d.m.ConfigMaps {
					if d.m.ConfigMaps[i].Name == "connect-kafka-broker-config" {
						d.m.ConfigMaps[i].Data = map[string]string{"bootstrap.servers": "x:9093"}
					}
				}
			}},
		{"sink without credentials", "kafka-auth", `KafkaSink "connect-events-dlq": field spec.auth.secret.ref.name: required`,
			func(d *deployment) { d.m.KafkaSinks[0].AuthSecret = "" }},
		{"source without TLS", "kafka-auth", `KafkaSource "ingest-push-league-scores": field spec.net: sasl and tls must be enabled`,
			func(d *deployment) { d.m.KafkaSources[0].TLS = false }},
		{"relay without a password", "kafka-auth", `Service "relay": field spec.template.spec.containers[0].env: KAFKA_SASL_PASSWORD: required`,
			func(d *deployment) {
				s := svc(*d, "relay")
				s.Env = slices.DeleteFunc(s.Env, func(e EnvVar) bool { return e.Name == "KAFKA_SASL_PASSWORD" })
			}},
		{"relay with another user's password", "kafka-auth", `KAFKA_SASL_PASSWORD must be key password of Secret connect-kafka-relay (KafkaUser connect-relay), got Secret connect-kafka-sinks key password`,
			func(d *deployment) {
				s := svc(*d, "relay")
				for i := range s.Env {
					if s.Env[i].Name == "KAFKA_SASL_PASSWORD" {
						s.Env[i].From = &EnvSource{Kind: "Secret", Name: "connect-kafka-sinks", Key: "password"}
					}
				}
			}},
		{"relay mechanism as a literal", "kafka-auth", `KAFKA_SASL_MECHANISM must come from a ConfigMap or Secret, not a literal`,
			func(d *deployment) {
				s := svc(*d, "relay")
				for i := range s.Env {
					if s.Env[i].Name == "KAFKA_SASL_MECHANISM" {
						s.Env[i] = EnvVar{Name: "KAFKA_SASL_MECHANISM", Value: "SCRAM-SHA-512"}
					}
				}
			}},
		{"relay in clear", "kafka-auth", `KAFKA_TLS must be true`,
			func(d *deployment) { configData(*d, "connect-config")["KAFKA_TLS"] = "false" }},
		{"relay on the plaintext listener", "kafka-auth", `KAFKA_BROKERS is "kafka-kafka-bootstrap.kafka.svc:9092", not the authenticated listener`,
			func(d *deployment) {
				configData(*d, "connect-config")["KAFKA_BROKERS"] = "kafka-kafka-bootstrap.kafka.svc:9092"
			}},
		{"Triggers start at the latest offset", "earliest", `auto.offset.reset must be earliest, got "latest"`,
			func(d *deployment) {
				for i := range d.m.ConfigMaps {
					if d.m.ConfigMaps[i].Name == DataPlaneConfigMap {
						d.m.ConfigMaps[i].Data = map[string]string{DataPlaneConsumerConfig: "fetch.min.bytes=1\nauto.offset.reset = latest\n"}
					}
				}
			}},
		{"Job image of a library package", "job-images", `Job "connect-migrate": field spec.template.spec.containers[0].image: ko://github.com/myscrollr/connect/shared/db/migrate: shared/db/migrate is not a main package`,
			func(d *deployment) {
				container(*d, "connect-migrate", "migrate").Image = ImagePrefix + "shared/db/migrate"
			}},
		{"Job image of a folder that does not exist", "job-images", `field spec.template.spec.initContainers[0].image: ko://github.com/myscrollr/connect/shared/db/cmd/migrat: no such folder`,
			func(d *deployment) {
				container(*d, "connect-relay-setup", "wait-for-schema").Image = MigrateImage[:len(MigrateImage)-1]
			}},
		{"Job image from elsewhere", "job-images", `must be ko://github.com/myscrollr/connect/<path of a main package>, got "postgres:17"`,
			func(d *deployment) { container(*d, "connect-migrate", "migrate").Image = "postgres:17" }},
		{"Job image escaping the repository", "job-images", `got "ko://github.com/myscrollr/connect/../../etc"`,
			func(d *deployment) { container(*d, "connect-migrate", "migrate").Image = ImagePrefix + "../../etc" }},
		{"Job shares a function's ServiceAccount", "access", `Job "connect-relay-setup": field spec.template.spec.serviceAccountName: "function-relay" is also used by Service "relay"`,
			func(d *deployment) { job(*d, "connect-relay-setup").ServiceAccountName = "function-relay" }},
		{"Job without a ServiceAccount", "access", `Job "connect-migrate": field spec.template.spec.serviceAccountName: required`,
			func(d *deployment) { job(*d, "connect-migrate").ServiceAccountName = "" }},
		{"Job mounts a token", "access", `Job "connect-migrate": field spec.template.spec.automountServiceAccountToken: must be false`,
			func(d *deployment) { job(*d, "connect-migrate").AutomountToken = nil }},
		{"Job's ServiceAccount mounts its token", "access", `ServiceAccount "job-relay-setup": field automountServiceAccountToken: must be false`,
			func(d *deployment) {
				for i := range d.m.ServiceAccounts {
					if d.m.ServiceAccounts[i].Name == "job-relay-setup" {
						d.m.ServiceAccounts[i].AutomountToken = nil
					}
				}
			}},
		{"Job without a deadline", "jobs", `Job "connect-migrate": field spec.activeDeadlineSeconds: required`,
			func(d *deployment) { job(*d, "connect-migrate").ActiveDeadlineSeconds = nil }},
		{"Job kept forever", "jobs", `Job "connect-relay-setup": field spec.ttlSecondsAfterFinished: required`,
			func(d *deployment) { job(*d, "connect-relay-setup").TTLSecondsAfterFinished = nil }},
		{"Job with the default backoffLimit", "jobs", `field spec.backoffLimit: required`,
			func(d *deployment) { job(*d, "connect-migrate").BackoffLimit = nil }},
		{"Job restarting Always", "jobs", `Job "connect-migrate": field spec.template.spec.restartPolicy: must be Never or OnFailure, got "Always"`,
			func(d *deployment) { job(*d, "connect-migrate").RestartPolicy = "Always" }},
		{"Job as root", "jobs", `field spec.template.spec.securityContext.runAsNonRoot: must be true`,
			func(d *deployment) { job(*d, "connect-migrate").RunAsNonRoot = &no }},
		{"Job without seccomp", "jobs", `field spec.template.spec.securityContext.seccompProfile.type: must be RuntimeDefault, got ""`,
			func(d *deployment) { job(*d, "connect-relay-setup").SeccompProfile = "" }},
		{"Job container with a writable root", "jobs", `Job "connect-relay-setup": field spec.template.spec.initContainers[0].securityContext.readOnlyRootFilesystem: must be true`,
			func(d *deployment) {
				container(*d, "connect-relay-setup", "wait-for-schema").ReadOnlyRootFilesystem = &no
			}},
		{"Job container keeping capabilities", "jobs", `field spec.template.spec.containers[0].securityContext.capabilities.drop: must contain ALL, got [NET_RAW]`,
			func(d *deployment) {
				container(*d, "connect-migrate", "migrate").DropCapabilities = []string{"NET_RAW"}
			}},
		{"Job container may escalate", "jobs", `securityContext.allowPrivilegeEscalation: must be false`,
			func(d *deployment) {
				container(*d, "connect-relay-setup", "relay-setup").AllowPrivilegeEscalation = nil
			}},
		{"Job container without a memory limit", "jobs", `Job "connect-migrate": field spec.template.spec.containers[0].resources.limits.memory: required`,
			func(d *deployment) { container(*d, "connect-migrate", "migrate").Limits = nil }},
		{"relay setup does not wait for the migration", "job-order", `Job "connect-relay-setup": field spec.template.spec.initContainers[0]: must run ko://github.com/myscrollr/connect/shared/db/cmd/migrate with args [-check]`,
			func(d *deployment) {
				j := job(*d, "connect-relay-setup")
				j.Containers = j.MainContainers()
			}},
		{"schema check as the owner", "job-order", `DATABASE_URL must be the Job's own (Secret connect-db-relay key DATABASE_URL), got Secret connect-db-migrate key DATABASE_URL`,
			func(d *deployment) {
				setEnvFrom(container(*d, "connect-relay-setup", "wait-for-schema"), "DATABASE_URL", &EnvSource{Kind: "Secret", Name: "connect-db-migrate", Key: "DATABASE_URL"})
			}},
		{"schema check that fails the pod", "job-order", `restartPolicy: must be OnFailure so the schema check retries in place`,
			func(d *deployment) { job(*d, "connect-relay-setup").RestartPolicy = "Never" }},
		{"relay setup gives up before the migration", "job-order", `field spec.activeDeadlineSeconds: must be longer than Job "connect-migrate"'s 300 s`,
			func(d *deployment) {
				short := 300 // equal is not longer
				job(*d, "connect-relay-setup").ActiveDeadlineSeconds = &short
			}},
		{"migration outlasting Knative's progress deadline", "job-order", `Job "connect-migrate": field spec.activeDeadlineSeconds: 10m0s, plus the kubelet's 5m0s between restarts of a function waiting for it, exceeds Knative's progress deadline 10m0s`,
			func(d *deployment) {
				long, longer := 600, 900
				job(*d, "connect-migrate").ActiveDeadlineSeconds = &long
				job(*d, "connect-relay-setup").ActiveDeadlineSeconds = &longer
			}},
		{"no migration Job", "job-order", `no migration Job`,
			func(d *deployment) {
				d.m.Jobs = slices.DeleteFunc(d.m.Jobs, func(j Job) bool { return j.Name == "connect-migrate" })
			}},
		{"slot created in another database", "job-settings", `Job "connect-relay-setup": field spec.template.spec.containers[0].env: DATABASE_URL must be as Service "relay" gives it (Secret connect-db-relay key DATABASE_URL), got Secret connect-db-catalog key DATABASE_URL`,
			func(d *deployment) {
				c := container(*d, "connect-relay-setup", "relay-setup")
				setEnvFrom(c, "DATABASE_URL", &EnvSource{Kind: "Secret", Name: "connect-db-catalog", Key: "DATABASE_URL"})
				// The schema check follows, so only the settings check sees the mismatch.
				setEnvFrom(container(*d, "connect-relay-setup", "wait-for-schema"), "DATABASE_URL", c.Env[0].From)
			}},
		{"relay streams a slot the Job does not create", "job-settings", `RELAY_SLOT must be as Service "relay" gives it ("connect_relay_v2"), got unset`,
			func(d *deployment) { setEnv(svc(*d, "relay"), "RELAY_SLOT", "connect_relay_v2") }},
		{"Job's Kafka differs from the relay's", "job-settings", `KAFKA_BROKERS must be as Service "relay" gives it (ConfigMap connect-config key KAFKA_BROKERS), got "localhost:9092"`,
			func(d *deployment) {
				c := container(*d, "connect-relay-setup", "relay-setup")
				for i := range c.Env {
					if c.Env[i].Name == "KAFKA_BROKERS" {
						c.Env[i] = EnvVar{Name: "KAFKA_BROKERS", Value: "localhost:9092"}
					}
				}
			}},
		{"Job reads a Secret not listed", "secrets", `Secret connect-db-owner key DATABASE_URL is referenced by the manifests but not listed`,
			func(d *deployment) {
				setEnvFrom(container(*d, "connect-migrate", "migrate"), "DATABASE_URL", &EnvSource{Kind: "Secret", Name: "connect-db-owner", Key: "DATABASE_URL"})
			}},
		{"data-plane config not shipped", "earliest", `no ConfigMap knative-eventing/config-kafka-broker-data-plane`,
			func(d *deployment) {
				d.m.ConfigMaps = slices.DeleteFunc(d.m.ConfigMaps, func(c ConfigMap) bool { return c.Name == DataPlaneConfigMap })
			}},
	}
	// Other checks a mistake rightly trips too: an undeclared topic has no ACL either.
	also := map[string][]string{
		"dead-letter topic not declared": {"acls"}, "external topic not declared": {"acls"},
		"KafkaSource topic not declared": {"acls"}, "relay topic not declared": {"acls"},
		// A Secret named after no KafkaUser is not listed either.
		"sink secret without a user": {"secrets"},
		// A Job whose image is not the migration's is not the migration Job, nor the wait.
		"Job image of a library package": {"job-order"}, "Job image from elsewhere": {"job-order"},
		"Job image escaping the repository": {"job-order"}, "Job image of a folder that does not exist": {"job-order"},
	}
	names := map[string]bool{}
	for _, c := range checks {
		names[c.name] = true
	}
	planted := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !names[c.check] {
				t.Fatalf("no check %q", c.check)
			}
			planted[c.check] = true
			d := loadDeployment(t, manifestDir, pendingDir)
			c.plant(&d)
			for _, ch := range checks {
				err := ch.run(d)
				if ch.name != c.check {
					if err != nil && !slices.Contains(also[c.name], ch.name) {
						t.Errorf("check %s also failed: %v", ch.name, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("check %s accepted the mistake", ch.name)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Fatalf("check %s: %v\nwant it to contain %q", ch.name, err, c.want)
				}
			}
		})
	}
	for n := range names {
		if !planted[n] {
			t.Errorf("check %s has no planted mistake", n)
		}
	}
}

// TestLoadKafkaRejects plants mistakes in Strimzi manifests that LoadKafka itself refuses.
func TestLoadKafkaRejects(t *testing.T) {
	topic := `apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata:
  name: t
  namespace: kafka
  labels: {strimzi.io/cluster: kafka}
spec:
  topicName: connect.events
  partitions: 3
  replicas: 3
  config: {min.insync.replicas: "2", retention.ms: "1"}
`
	user := `apiVersion: kafka.strimzi.io/v1
kind: KafkaUser
metadata:
  name: u
  namespace: kafka
  labels: {strimzi.io/cluster: kafka}
spec:
  authentication: {type: scram-sha-512}
  authorization:
    type: simple
    acls:
      - resource: {type: topic, name: connect.events, patternType: literal}
        operations: [Read]
`
	cases := []struct{ name, yaml, want string }{
		{"old API version", strings.Replace(topic, "kafka.strimzi.io/v1\n", "kafka.strimzi.io/v1beta2\n", 1), "want kafka.strimzi.io/v1 KafkaTopic or KafkaUser"},
		{"misspelt field", strings.Replace(topic, "partitions: 3", "partition: 3", 1), `unknown field "partition"`},
		{"no partitions", strings.Replace(topic, "  partitions: 3\n", "", 1), "spec.partitions: must be at least 1"},
		{"no cluster label", strings.Replace(topic, "labels: {strimzi.io/cluster: kafka}", "labels: {}", 1), "strimzi.io/cluster"},
		{"duplicate topic", topic + "---\n" + strings.Replace(topic, "name: t\n", "name: t2\n", 1), `topic "connect.events" is also declared`},
		{"unknown operation", strings.Replace(user, "[Read]", "[Reed]", 1), `unknown operation "Reed"`},
		{"unknown pattern", strings.Replace(user, "patternType: literal", "patternType: glob", 1), "patternType: must be literal or prefix"},
		{"deprecated singular operation", strings.Replace(user, "operations: [Read]", "operation: Read", 1), `unknown field "operation"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(c.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadKafka(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadKafka = %v, want %q", err, c.want)
			}
		})
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(topic+"---\n"+user), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKafka(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := k.User("u"); !u.Allows("topic", "connect.events", "Read") || u.Allows("topic", "connect.events", "Write") {
		t.Fatalf("ACLs = %+v", u.ACLs)
	}
}

func TestProperties(t *testing.T) {
	p := properties("# c\n! c\na=1\n b : 2 \nc\na=3\n")
	if p["a"] != "3" || p["b"] != "2" || p["c"] != "" || len(p) != 3 {
		t.Fatalf("properties = %v", p)
	}
}
