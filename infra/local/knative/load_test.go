package knative

import (
	"strings"
	"testing"
	"time"
)

// TestLoadRepositoryManifests reads infra/knative together with infra/knative-pending: the
// whole routing table, deployed and pending, must load and resolve its references.
func TestLoadRepositoryManifests(t *testing.T) {
	if _, err := Load(manifestDir); err != nil {
		t.Fatalf("infra/knative alone: %v", err)
	}
	m, err := Load(manifestDir, pendingDir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"catalog", "health-probe", "ingest", "install", "logto-webhook", "notify",
		"poll", "registry", "relay", "stripe-webhook", "uninstall"}
	if got := strings.Join(m.ServiceNames(), ","); got != strings.Join(want, ",") {
		t.Fatalf("services = %s, want %s", got, strings.Join(want, ","))
	}
	for _, s := range m.Services {
		if s.Namespace != "connect" || s.Port != 8080 || s.ReadinessPath != "/readyz" || s.LivenessPath != "/healthz" {
			t.Errorf("%s: namespace %q port %d probes %q %q", s.Name, s.Namespace, s.Port, s.ReadinessPath, s.LivenessPath)
		}
		wantMin, wantMaxAtLeast := 0, 1
		if s.Name == "relay" {
			wantMin = 1
			if s.MaxScale != 1 {
				t.Errorf("relay max-scale = %d, want 1", s.MaxScale)
			}
		}
		if s.MinScale != wantMin || s.MaxScale < wantMaxAtLeast {
			t.Errorf("%s: min-scale %d max-scale %d", s.Name, s.MinScale, s.MaxScale)
		}
		env := map[string]EnvVar{}
		for _, e := range s.Env {
			env[e.Name] = e
		}
		if e := env["DATABASE_URL"]; e.From == nil || e.From.Kind != "Secret" {
			t.Errorf("%s: DATABASE_URL not from a Secret: %+v", s.Name, e)
		}
		if e, ok := env["KAFKA_BROKERS"]; ok && (e.From == nil || e.From.Kind != "ConfigMap") {
			t.Errorf("%s: KAFKA_BROKERS not from a ConfigMap: %+v", s.Name, e)
		}
	}

	b, ok := m.Broker("connect")
	if !ok || b.Class != "Kafka" || b.ExternalTopic != "connect.events" {
		t.Fatalf("broker = %+v", b)
	}
	if d := b.Delivery; d == nil || d.Retry != 5 || d.BackoffPolicy != BackoffExponential ||
		d.BackoffDelay != 200*time.Millisecond || d.DeadLetterSink == nil || d.DeadLetterSink.Ref.Name != "connect-events-dlq" {
		t.Fatalf("broker delivery = %+v", b.Delivery)
	}
	if k, ok := m.KafkaSink("connect-events-dlq"); !ok || k.Topic != "connect.events.dlq" {
		t.Fatalf("dlq sink = %+v", k)
	}

	routes := map[string][]string{}
	for _, tr := range m.Triggers {
		if tr.Broker != "connect" || tr.Subscriber.URI != "/events" || tr.Subscriber.Ref == nil {
			t.Errorf("trigger %s: %+v", tr.Name, tr)
			continue
		}
		routes[tr.Filter["type"]] = append(routes[tr.Filter["type"]], tr.Subscriber.Ref.Name)
	}
	const p = "com.myscrollr.connect."
	// developer.role.changed has no subscriber: the registry authorizes by token scope
	// (functions/registry/doc.go), so nothing consumes role changes yet.
	if got := routes[p+"developer.role.changed"]; len(got) != 0 {
		t.Errorf("developer.role.changed goes to %v; nothing subscribes to it", got)
	}
	for typ, fn := range map[string]string{
		p + "payment.succeeded": "install", p + "subscription.ended": "uninstall", p + "user.deleted": "uninstall",
		p + "install.completed": "notify", p + "install.revoked": "notify",
	} {
		if got := routes[typ]; len(got) != 1 || got[0] != fn {
			t.Errorf("type %s goes to %v, want [%s]", typ, got, fn)
		}
	}

	// A trigger without delivery uses the broker's; one with delivery keeps its own.
	for _, tr := range m.Triggers {
		d := m.DeliveryFor(tr)
		if d.DeadLetterSink == nil || d.DeadLetterSink.Ref.Name != "connect-events-dlq" {
			t.Errorf("trigger %s: effective dead-letter sink %+v", tr.Name, d.DeadLetterSink)
		}
		switch tr.Name {
		case "uninstall-user-deleted":
			if d.Retry != 5 {
				t.Errorf("%s: retry %d, want the broker's 5", tr.Name, d.Retry)
			}
		case "notify-install-completed":
			if d.Retry != 8 || d.Timeout != time.Minute || d.BackoffDelay != 500*time.Millisecond {
				t.Errorf("%s: delivery %+v", tr.Name, d)
			}
		}
	}

	pings := map[string]PingSource{}
	for _, ps := range m.PingSources {
		pings[ps.Sink.Ref.Name] = ps
	}
	if hp := pings["health-probe"]; hp.Schedule != "* * * * *" || hp.ContentType != "application/json" || string(hp.Data) != `{"job":"health-probe"}` || hp.Sink.URI != "/events" {
		t.Errorf("health-probe ping = %+v", hp)
	}
	if _, ok := pings["poll"]; !ok {
		t.Error("no PingSource for poll")
	}

	if len(m.KafkaSources) != 1 {
		t.Fatalf("kafka sources = %d", len(m.KafkaSources))
	}
	ks := m.KafkaSources[0]
	if ks.ConsumerGroup != "connect-ingest-league-scores" || ks.Sink.Ref.Name != "ingest" || ks.Sink.URI != "/events" ||
		len(ks.Topics) != 1 || ks.Topics[0] != "integrations.league-scores.data" || ks.InitialOffset != "earliest" {
		t.Errorf("kafka source = %+v", ks)
	}
}

const baseManifests = `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: install, namespace: connect}
spec:
  template:
    spec:
      containers: [{image: "ko://github.com/myscrollr/connect/functions/install"}]
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: connect, namespace: connect}
`

func TestParseErrors(t *testing.T) {
	trigger := `---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t1, namespace: connect}
spec:
  broker: connect
  filter: {attributes: {type: a.b}}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}
    uri: /events
`
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown broker", strings.Replace(trigger, "broker: connect", "broker: nope", 1), `Trigger "t1": field spec.broker: no Broker named "nope"`},
		{"unknown subscriber", strings.Replace(trigger, "name: install}", "name: ghost}", 1), `Trigger "t1": field spec.subscriber.ref.name: no Service named "ghost"`},
		{"bad backoff delay", trigger + "  delivery: {backoffDelay: 200ms}\n", `Trigger "t1": field spec.delivery.backoffDelay: duration "200ms": must start with P`},
		{"bad backoff policy", trigger + "  delivery: {backoffPolicy: random}\n", `field spec.delivery.backoffPolicy: must be linear or exponential`},
		{"negative retry", trigger + "  delivery: {retry: -1}\n", `field spec.delivery.retry: must not be negative`},
		{"retry of wrong type", trigger + "  delivery: {retry: many}\n", `Trigger "t1": field spec.delivery.retry: expected int, got string`},
		{"missing dead-letter sink", trigger + "  delivery: {deadLetterSink: {ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: dlq}}}\n", `no KafkaSink named "dlq"`},
		{"dead-letter sink of the wrong group", trigger + "  delivery: {deadLetterSink: {ref: {apiVersion: eventing.kafka.knative.dev/v1alpha1, kind: KafkaSink, name: dlq}}}\n", `field spec.delivery.deadLetterSink.ref.apiVersion: must be eventing.knative.dev/v1alpha1`},
		{"KafkaSink of the wrong group", "---\napiVersion: eventing.kafka.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: dlq}\nspec: {topic: t, bootstrapServers: [b]}\n", `unsupported apiVersion/kind eventing.kafka.knative.dev/v1alpha1 KafkaSink`},
		{"unsupported kind", "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n", `unsupported apiVersion/kind apps/v1 Deployment`},
		{"missing name", "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", `field metadata.name: required`},
		{"duplicate key", "---\napiVersion: v1\napiVersion: v1\n", `document 3`},
		{"duplicate object", "---\n" + baseManifests, `Service "install": also defined in test.yaml`},
		{"ping data and dataBase64", `---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: p}
spec: {data: x, dataBase64: eA==, sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}}}
`, `PingSource "p": field spec.dataBase64: data and dataBase64 are mutually exclusive`},
		{"kafka source without group", `---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: k}
spec: {topics: [a], bootstrapServers: [b], sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}}}
`, `KafkaSource "k": field spec.consumerGroup: required`},
		{"sink to a non-service", `---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: p}
spec: {sink: {ref: {apiVersion: v1, kind: Pod, name: install}}}
`, `field spec.sink.ref: must refer to a serving.knative.dev Service`},
		{"relative uri without ref", `---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: p}
spec: {sink: {uri: /events}}
`, `field spec.sink.uri: must be absolute`},
		{"reserved PORT", `---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: other}
spec: {template: {spec: {containers: [{image: x, env: [{name: PORT, value: "1"}]}]}}}
`, `field spec.template.spec.containers[0].env[0].name: PORT is reserved`},
		{"min above max", `---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: other}
spec: {template: {metadata: {annotations: {autoscaling.knative.dev/min-scale: "3", autoscaling.knative.dev/max-scale: "1"}}, spec: {containers: [{image: x}]}}}
`, `min-scale 3 exceeds max-scale 1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(baseManifests+c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "test.yaml") {
				t.Fatalf("error %q, want it to start with the file and contain %q", err, c.want)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	m, err := Parse("test.yaml", []byte(baseManifests+`---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: all, namespace: connect}
spec:
  broker: connect
  subscriber: {uri: "http://127.0.0.1:9/x"}
---
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: p, namespace: connect}
spec:
  dataBase64: aGk=
  sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}}
`))
	if err != nil {
		t.Fatal(err)
	}
	tr := m.Triggers[0]
	if len(tr.Filter) != 0 || tr.Subscriber.Ref != nil || tr.Subscriber.URI != "http://127.0.0.1:9/x" {
		t.Errorf("trigger = %+v", tr)
	}
	if d := m.DeliveryFor(tr); d.Retry != 0 || d.DeadLetterSink != nil || d.BackoffPolicy != BackoffExponential {
		t.Errorf("default delivery = %+v", d)
	}
	p := m.PingSources[0]
	if p.Schedule != "* * * * *" || string(p.Data) != "hi" || p.Sink.Ref.Namespace != "connect" {
		t.Errorf("ping = %+v", p)
	}
	if s, _ := m.Service("install"); s.Port != 8080 || s.MinScale != 0 || s.MaxScale != 0 {
		t.Errorf("service defaults = %+v", s)
	}
}

func TestDeliveryBackoff(t *testing.T) {
	exp := Delivery{BackoffPolicy: BackoffExponential, BackoffDelay: 10 * time.Millisecond}
	lin := Delivery{BackoffPolicy: BackoffLinear, BackoffDelay: 10 * time.Millisecond}
	for n, want := range map[int][2]time.Duration{
		// The Kafka dispatcher's exponential policy: the first retry waits twice the delay.
		0: {0, 0}, 1: {20 * time.Millisecond, 10 * time.Millisecond}, 2: {40 * time.Millisecond, 20 * time.Millisecond},
		3: {80 * time.Millisecond, 30 * time.Millisecond}, 4: {160 * time.Millisecond, 40 * time.Millisecond},
	} {
		if got := exp.Backoff(n); got != want[0] {
			t.Errorf("exponential retry %d: %v, want %v", n, got, want[0])
		}
		if got := lin.Backoff(n); got != want[1] {
			t.Errorf("linear retry %d: %v, want %v", n, got, want[1])
		}
	}
	if got := exp.Backoff(1000); got <= 0 {
		t.Errorf("huge retry count overflowed: %v", got)
	}
	week := Delivery{BackoffPolicy: BackoffExponential, BackoffDelay: 7 * 24 * time.Hour}
	if got := week.Backoff(30); got <= 0 {
		t.Errorf("huge delay overflowed: %v", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(baseManifests))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec: {broker: x, delivery: {backoffDelay: PT1S}}\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.yaml", data)
		if err == nil && m == nil {
			t.Fatal("nil manifests without error")
		}
	})
}

const jobManifest = `apiVersion: batch/v1
kind: Job
metadata:
  name: step
  namespace: connect
  labels: {app.kubernetes.io/name: step}
spec:
  backoffLimit: 2
  activeDeadlineSeconds: 60
  ttlSecondsAfterFinished: 3600
  template:
    metadata:
      labels: {app.kubernetes.io/name: step}
    spec:
      restartPolicy: OnFailure
      serviceAccountName: job-step
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      initContainers:
        - name: wait
          image: ko://github.com/myscrollr/connect/shared/db/cmd/migrate
          args: ["-check"]
          env:
            - {name: DATABASE_URL, valueFrom: {secretKeyRef: {name: connect-db-relay, key: DATABASE_URL}}}
      containers:
        - name: run
          image: ko://github.com/myscrollr/connect/functions/relay
          args: ["-setup"]
          env:
            - {name: KAFKA_BROKERS, valueFrom: {configMapKeyRef: {name: connect-config, key: KAFKA_BROKERS}}}
            - {name: RELAY_SLOT, value: connect_relay}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
          resources:
            requests: {cpu: 10m, memory: 32Mi}
            limits: {memory: 64Mi}
`

// TestLoadJob reads a batch/v1 Job: kept for the deployment checks, init containers first,
// and decoded strictly, since no CRD schema checks its fields.
func TestLoadJob(t *testing.T) {
	m, err := Parse("jobs.yaml", []byte(jobManifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Jobs) != 1 || len(m.Services) != 0 {
		t.Fatalf("jobs %d, services %d", len(m.Jobs), len(m.Services))
	}
	j := m.Jobs[0]
	if j.Name != "step" || j.Namespace != "connect" || *j.BackoffLimit != 2 || *j.ActiveDeadlineSeconds != 60 ||
		*j.TTLSecondsAfterFinished != 3600 || j.RestartPolicy != "OnFailure" || j.ServiceAccountName != "job-step" ||
		*j.AutomountToken || !*j.RunAsNonRoot || j.SeccompProfile != "RuntimeDefault" {
		t.Fatalf("job = %+v", j)
	}
	if len(j.Containers) != 2 {
		t.Fatalf("containers = %+v", j.Containers)
	}
	w, r := j.Containers[0], j.Containers[1]
	if !w.Init || w.Field != "spec.template.spec.initContainers[0]" || w.Name != "wait" || strings.Join(w.Args, " ") != "-check" ||
		len(w.Env) != 1 || w.Env[0].From == nil || *w.Env[0].From != (EnvSource{Kind: "Secret", Name: "connect-db-relay", Key: "DATABASE_URL"}) {
		t.Errorf("init container = %+v", w)
	}
	if r.Init || r.Field != "spec.template.spec.containers[0]" || r.Image != "ko://github.com/myscrollr/connect/functions/relay" ||
		!*r.ReadOnlyRootFilesystem || *r.AllowPrivilegeEscalation || strings.Join(r.DropCapabilities, ",") != "ALL" ||
		r.Requests["cpu"] != "10m" || r.Limits["memory"] != "64Mi" || r.RunAsNonRoot != nil {
		t.Errorf("container = %+v", r)
	}
	if e, ok := r.Setting("RELAY_SLOT"); !ok || e.Value != "connect_relay" || e.From != nil {
		t.Errorf("RELAY_SLOT = %+v, %v", e, ok)
	}
	if _, ok := r.Setting("DATABASE_URL"); ok {
		t.Error("DATABASE_URL found in the main container")
	}
	if mc := j.MainContainers(); len(mc) != 1 || mc[0].Name != "run" {
		t.Errorf("main containers = %+v", mc)
	}

	for _, c := range []struct{ name, yaml, want string }{
		{"misspelt field", strings.Replace(jobManifest, "activeDeadlineSeconds", "activeDeadlineSecond", 1), `Job "step": json: unknown field "activeDeadlineSecond"`},
		{"unknown container field", strings.Replace(jobManifest, "          args: [\"-setup\"]", "          arg: [\"-setup\"]", 1), `unknown field "arg"`},
		{"no containers", jobManifest[:strings.Index(jobManifest, "      containers:")], `Job "step": field spec.template.spec.containers: at least one container is required`},
		{"container without an image", strings.Replace(jobManifest, "          image: ko://github.com/myscrollr/connect/functions/relay\n", "", 1), `field spec.template.spec.containers[0].image: required`},
		{"env without a name", strings.Replace(jobManifest, "{name: RELAY_SLOT, value: connect_relay}", "{value: connect_relay}", 1), `field spec.template.spec.containers[0].env[1].name: required`},
		{"env from a field", strings.Replace(jobManifest, "{name: RELAY_SLOT, value: connect_relay}", "{name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}", 1), `unknown field "fieldRef"`},
		{"wrong type", strings.Replace(jobManifest, "backoffLimit: 2", "backoffLimit: two", 1), `field spec.backoffLimit: expected int`},
		{"duplicate", jobManifest + "---\n" + jobManifest, `Job "step": also defined in jobs.yaml`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("jobs.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want %q", err, c.want)
			}
		})
	}
}
