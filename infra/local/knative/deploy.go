package knative

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file checks the manifests the way Knative's webhooks and controllers (and
// eventing-kafka-broker's, and Strimzi's topic operator) would, beyond the CRD schemas:
// references resolve to served kinds, topics exist, delivery order is decided, probes keep
// Knative's fast start-up probing, shutdown fits the grace period, every function and every Job
// runs as its own token-less ServiceAccount, every Kafka client brings credentials, and the
// Jobs run before the functions (migration first), bounded, confined and built from this
// repository. Each Check returns every mistake it finds, joined, each naming the file, object
// and field.

// APIKinds maps a kind to the apiVersions ("group/version") that serve it.
type APIKinds map[string][]string

// KindsFromCRDs builds APIKinds from the CustomResourceDefinitions of crdDir (every served
// version), plus the core v1 kinds manifests refer to (ConfigMap, Secret).
func KindsFromCRDs(crdDir string) (APIKinds, error) {
	kinds := APIKinds{"ConfigMap": {"v1"}, "Secret": {"v1"}}
	err := eachDocument(crdDir, func(d Document) error {
		var def crd
		if err := json.Unmarshal(d.JSON, &def); err != nil {
			return fmt.Errorf("%s: CRD: %v", d.File, err)
		}
		if def.Kind != "CustomResourceDefinition" {
			return nil
		}
		for _, v := range def.Spec.Versions {
			if v.Served {
				k := def.Spec.Names.Kind
				kinds[k] = append(kinds[k], def.Spec.Group+"/"+v.Name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("knative CRDs: %w", err)
	}
	return kinds, nil
}

// CheckRefs checks that every reference (Trigger subscribers, source sinks, dead-letter sinks,
// a Broker's config) names a kind with an apiVersion that serves it, and an object of these
// manifests: what the Eventing controllers resolve before an object can become Ready.
func (m *Manifests) CheckRefs(kinds APIKinds) error {
	var errs []error
	check := func(o Object, field string, r *Ref) {
		if r == nil {
			return
		}
		served, ok := kinds[r.Kind]
		if !ok {
			errs = append(errs, fieldError(o, field+".kind", "no CRD defines kind %q", r.Kind))
			return
		}
		if !slices.Contains(served, r.APIVersion) {
			errs = append(errs, fieldError(o, field+".apiVersion", "%s is served as %s, not %q", r.Kind, strings.Join(served, " or "), r.APIVersion))
			return
		}
		if !m.defines(r) {
			errs = append(errs, fieldError(o, field+".name", "no %s %q in namespace %q", r.Kind, r.Name, r.Namespace))
		}
	}
	dest := func(o Object, field string, d *Destination) {
		if d != nil {
			check(o, field+".ref", d.Ref)
		}
	}
	delivery := func(o Object, field string, d *Delivery) {
		if d != nil {
			dest(o, field+".deadLetterSink", d.DeadLetterSink)
		}
	}
	for _, b := range m.Brokers {
		check(b.Object, "spec.config", b.Config)
		delivery(b.Object, "spec.delivery", b.Delivery)
	}
	for _, t := range m.Triggers {
		dest(t.Object, "spec.subscriber", &t.Subscriber)
		delivery(t.Object, "spec.delivery", t.Delivery)
	}
	for _, p := range m.PingSources {
		dest(p.Object, "spec.sink", &p.Sink)
	}
	for _, k := range m.KafkaSources {
		dest(k.Object, "spec.sink", &k.Sink)
		delivery(k.Object, "spec.delivery", k.Delivery)
	}
	return errors.Join(errs...)
}

// defines reports whether the manifests hold the object r names.
func (m *Manifests) defines(r *Ref) bool {
	var objs []Object
	switch r.Kind {
	case "Service":
		for _, s := range m.Services {
			objs = append(objs, s.Object)
		}
	case "KafkaSink":
		for _, s := range m.KafkaSinks {
			objs = append(objs, s.Object)
		}
	case "Broker":
		for _, b := range m.Brokers {
			objs = append(objs, b.Object)
		}
	case "ConfigMap":
		for _, c := range m.ConfigMaps {
			objs = append(objs, c.Object)
		}
	}
	return slices.ContainsFunc(objs, func(o Object) bool { return o.Name == r.Name && o.Namespace == r.Namespace })
}

// TopicUse is a Kafka topic a manifest uses, and who uses it.
type TopicUse struct {
	Topic string
	By    string // "<file>: <Kind> <name> <field>"
}

// TopicsUsed returns the topics of the manifests: Broker external topics, KafkaSink topics and
// KafkaSource topics.
func (m *Manifests) TopicsUsed() []TopicUse {
	var out []TopicUse
	by := func(o Object, field string) string { return fmt.Sprintf("%s: %s %q %s", o.File, o.Kind, o.Name, field) }
	for _, b := range m.Brokers {
		if b.ExternalTopic != "" {
			out = append(out, TopicUse{b.ExternalTopic, by(b.Object, "metadata.annotations["+AnnotationExternalTopic+"]")})
		}
	}
	for _, s := range m.KafkaSinks {
		out = append(out, TopicUse{s.Topic, by(s.Object, "spec.topic")})
	}
	for _, k := range m.KafkaSources {
		for i, t := range k.Topics {
			out = append(out, TopicUse{t, by(k.Object, fmt.Sprintf("spec.topics[%d]", i))})
		}
	}
	return out
}

// CheckTopics checks that every topic used is declared by a KafkaTopic of k.
func CheckTopics(k *Kafka, uses []TopicUse) error {
	var errs []error
	for _, u := range uses {
		if _, ok := k.Topic(u.Topic); !ok {
			errs = append(errs, fmt.Errorf("%s: topic %q is not declared in infra/kafka (a KafkaTopic with spec.topicName %q)", u.By, u.Topic, u.Topic))
		}
	}
	return errors.Join(errs...)
}

// Delivery orders of the Kafka Broker (AnnotationDeliveryOrder).
const (
	Ordered   = "ordered"
	Unordered = "unordered"
)

// DeliveryOrders is the decided delivery order of each platform event type a Trigger filters
// on; the reason for each is written beside the Trigger (infra/knative/40-triggers.yaml and
// infra/knative-pending). Events of one key are delivered in order only by an ordered Trigger.
var DeliveryOrders = map[string]string{
	"com.myscrollr.connect.install.completed":        Ordered,   // an integration's lifecycle, in commit order
	"com.myscrollr.connect.install.revoked":          Ordered,   // same
	"com.myscrollr.connect.developer.role.changed":   Ordered,   // last change must win (no Trigger today)
	"com.myscrollr.connect.user.deleted":             Unordered, // terminal and idempotent
	"com.myscrollr.connect.subscription.ended":       Unordered, // terminal per subscription, idempotent
	"com.myscrollr.connect.install.revoke.requested": Unordered, // terminal per install, idempotent
	"com.myscrollr.connect.payment.succeeded":        Unordered, // each payment stands alone, idempotent
}

// CheckDeliveryOrder checks that each Trigger sets a valid delivery order (anything else makes
// eventing-kafka-broker's Trigger reconciler fail: deliveryOrderFromString) and the one decided
// in orders for the type it filters on; a Trigger on a type with no decision is an error, so
// each new Trigger gets one.
func (m *Manifests) CheckDeliveryOrder(orders map[string]string) error {
	var errs []error
	for _, t := range m.Triggers {
		field := "metadata.annotations[" + AnnotationDeliveryOrder + "]"
		if t.DeliveryOrder != Ordered && t.DeliveryOrder != Unordered {
			errs = append(errs, fieldError(t.Object, field, "must be %s or %s (unset means unordered: say so), got %q", Ordered, Unordered, t.DeliveryOrder))
			continue
		}
		typ := t.Filter["type"]
		want, ok := orders[typ]
		switch {
		case !ok:
			errs = append(errs, fieldError(t.Object, "spec.filter.attributes.type", "no delivery order decided for type %q: decide it (knative.DeliveryOrders) and write the reason beside the Trigger", typ))
		case t.DeliveryOrder != want:
			errs = append(errs, fieldError(t.Object, field, "events of type %s must be delivered %s, got %s", typ, want, t.DeliveryOrder))
		}
	}
	return errors.Join(errs...)
}

// CheckProbes checks that no probe sets periodSeconds, so queue-proxy probes readiness
// aggressively at start-up (knative/serving pkg/queue/readiness/probe.go), and that a readiness
// probe without a period sets neither failureThreshold nor timeoutSeconds, which Serving's
// webhook refuses (pkg/apis/serving/k8s_validation.go validateReadinessProbe).
func (m *Manifests) CheckProbes() error {
	var errs []error
	for _, s := range m.Services {
		for _, p := range s.Probes {
			field := "spec.template.spec.containers[0]." + p.Kind + "Probe"
			if p.PeriodSeconds != 0 {
				errs = append(errs, fieldError(s.Object, field+".periodSeconds", "must be unset: a period turns off Knative's fast start-up probing"))
			}
			if p.Kind == "readiness" && p.PeriodSeconds == 0 && (p.FailureThreshold != 0 || p.TimeoutSeconds != 0) {
				errs = append(errs, fieldError(s.Object, field, "failureThreshold and timeoutSeconds are refused when periodSeconds is zero"))
			}
		}
	}
	return errors.Join(errs...)
}

// Shutdown timing (see infra/knative/20-services.yaml for the sources).
const (
	// QueueProxyDrain is how long queue-proxy's preStop drain holds the function's SIGTERM at
	// least (knative/serving pkg/queue/sharedmain/main.go drainSleepDuration).
	QueueProxyDrain = 30 * time.Second
	// DefaultRevisionTimeout is Serving's revision-timeout-seconds default (config-defaults),
	// the grace period of a Service without timeoutSeconds.
	DefaultRevisionTimeout = 300 * time.Second
	// runtimeDrainDefault is shared/runtime's default DRAIN_TIMEOUT and SHUTDOWN_TIMEOUT.
	runtimeDrainDefault = 30 * time.Second
)

// ShutdownBudget is the longest a Service's pod may take to stop after Kubernetes asks it to:
// QueueProxyDrain + DRAIN_TIMEOUT + 2 x SHUTDOWN_TIMEOUT (shared/runtime: the drain's hard stop
// is quiet+limit, then http.Server.Shutdown gets the limit again) + every other
// *_DRAIN_TIMEOUT the function declares (the relay's wait for Kafka acknowledgements). Settings
// must be literal Go durations; unset ones count at the runtime's default.
func (s Service) ShutdownBudget() (time.Duration, error) {
	drain, shutdown, extra := runtimeDrainDefault, runtimeDrainDefault, time.Duration(0)
	for i, e := range s.Env {
		if e.Name != "DRAIN_TIMEOUT" && e.Name != "SHUTDOWN_TIMEOUT" && !strings.HasSuffix(e.Name, "_DRAIN_TIMEOUT") {
			continue
		}
		field := fmt.Sprintf("spec.template.spec.containers[0].env[%d]", i)
		if e.From != nil {
			return 0, fieldError(s.Object, field, "%s must be a literal value so its shutdown time can be checked", e.Name)
		}
		d, err := time.ParseDuration(e.Value)
		if err != nil || d < 0 {
			return 0, fieldError(s.Object, field+".value", "%s: want a non-negative Go duration, got %q", e.Name, e.Value)
		}
		switch e.Name {
		case "DRAIN_TIMEOUT":
			drain = d
		case "SHUTDOWN_TIMEOUT":
			shutdown = d
		default:
			extra += d
		}
	}
	return QueueProxyDrain + drain + 2*shutdown + extra, nil
}

// CheckDrain checks that every Service stops inside its grace period: Knative sets
// terminationGracePeriodSeconds to timeoutSeconds (knative/serving
// pkg/reconciler/revision/resources/deploy.go BuildPodSpec), so ShutdownBudget must be less.
func (m *Manifests) CheckDrain() error {
	var errs []error
	for _, s := range m.Services {
		budget, err := s.ShutdownBudget()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		grace := DefaultRevisionTimeout
		if s.TimeoutSeconds > 0 {
			grace = time.Duration(s.TimeoutSeconds) * time.Second
		}
		if budget >= grace {
			errs = append(errs, fieldError(s.Object, "spec.template.spec.timeoutSeconds",
				"shutdown may take %v (queue-proxy %v + DRAIN_TIMEOUT + 2 x SHUTDOWN_TIMEOUT + other drains), not less than the grace period %v: the pod would be killed mid-drain",
				budget, QueueProxyDrain, grace))
		}
	}
	return errors.Join(errs...)
}

// CheckAccess checks that every Service and every Job runs as its own ServiceAccount of these
// manifests (none shared between two of them), with automountServiceAccountToken false on both
// the ServiceAccount and the pod spec, and that a NetworkPolicy guards the namespace of every
// Service.
func (m *Manifests) CheckAccess() error {
	var errs []error
	usedBy := map[string]string{} // ServiceAccount -> "Service catalog", "Job connect-migrate"
	pod := func(o Object, account string, automount *bool) {
		field := "spec.template.spec."
		if automount == nil || *automount {
			errs = append(errs, fieldError(o, field+"automountServiceAccountToken", "must be false: nothing here talks to the Kubernetes API"))
		}
		if account == "" {
			errs = append(errs, fieldError(o, field+"serviceAccountName", "required: each function and each Job runs as its own ServiceAccount"))
			return
		}
		if other, dup := usedBy[account]; dup {
			errs = append(errs, fieldError(o, field+"serviceAccountName", "%q is also used by %s: one ServiceAccount each", account, other))
		}
		usedBy[account] = fmt.Sprintf("%s %q", o.Kind, o.Name)
		i := slices.IndexFunc(m.ServiceAccounts, func(a ServiceAccount) bool {
			return a.Name == account && a.Namespace == o.Namespace
		})
		switch {
		case i < 0:
			errs = append(errs, fieldError(o, field+"serviceAccountName", "no ServiceAccount %q in namespace %q", account, o.Namespace))
		case m.ServiceAccounts[i].AutomountToken == nil || *m.ServiceAccounts[i].AutomountToken:
			errs = append(errs, fieldError(m.ServiceAccounts[i].Object, "automountServiceAccountToken", "must be false"))
		}
	}
	for _, s := range m.Services {
		pod(s.Object, s.ServiceAccountName, s.AutomountToken)
		if !slices.ContainsFunc(m.NetworkPolicies, func(o Object) bool { return o.Namespace == s.Namespace }) {
			errs = append(errs, fieldError(s.Object, "metadata.namespace", "no NetworkPolicy in namespace %q: anything in the cluster could reach the function", s.Namespace))
		}
	}
	for _, j := range m.Jobs {
		pod(j.Object, j.ServiceAccountName, j.AutomountToken)
	}
	return errors.Join(errs...)
}

// ImagePrefix is how every image of the manifests starts: ko builds the main package at the
// import path that follows.
const ImagePrefix = "ko://github.com/myscrollr/connect/"

// MigrateImage is the image of the migration command (shared/db/cmd/migrate): the migration
// Job, and the schema check that other Jobs wait on.
const MigrateImage = ImagePrefix + "shared/db/cmd/migrate"

// CheckJobImages checks that every container of every Job runs a ko image of a main package of
// this repository: ImagePrefix and a folder of root (the repository) whose Go files are package
// main. Anything else would fail the build (ko builds only main packages) or, worse, be pulled
// from elsewhere.
func (m *Manifests) CheckJobImages(root string) error {
	var errs []error
	for _, j := range m.Jobs {
		for _, c := range j.Containers {
			path, ok := strings.CutPrefix(c.Image, ImagePrefix)
			if !ok || path == "" || filepath.IsAbs(path) || slices.Contains(strings.Split(path, "/"), "..") {
				errs = append(errs, fieldError(j.Object, c.Field+".image", "must be %s<path of a main package>, got %q", ImagePrefix, c.Image))
				continue
			}
			main, err := mainPackage(filepath.Join(root, filepath.FromSlash(path)))
			switch {
			case err != nil:
				errs = append(errs, fieldError(j.Object, c.Field+".image", "%s: %v", c.Image, err))
			case !main:
				errs = append(errs, fieldError(j.Object, c.Field+".image", "%s: %s is not a main package: ko cannot build it", c.Image, path))
			}
		}
	}
	return errors.Join(errs...)
}

// mainPackage reports whether dir holds Go files (tests aside) of package main.
func mainPackage(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("no such folder in the repository")
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, name), nil, parser.PackageClauseOnly)
		if err != nil {
			return false, err
		}
		return f.Name.Name == "main", nil
	}
	return false, nil
}

// CheckJobs checks what keeps a Job bounded and confined: backoffLimit, activeDeadlineSeconds
// (a stuck step must end, the functions wait for it) and ttlSecondsAfterFinished (finished Jobs
// are removed) set; restartPolicy Never or OnFailure (the only ones a Job accepts); a pod that
// runs as non-root with the RuntimeDefault seccomp profile, and containers with a read-only
// root filesystem, no privilege escalation and every capability dropped (the Pod Security
// Standard "restricted"); every container requesting cpu and memory and limiting memory.
func (m *Manifests) CheckJobs() error {
	var errs []error
	for _, j := range m.Jobs {
		for _, f := range []struct {
			name string
			v    *int
			min  int
		}{{"spec.backoffLimit", j.BackoffLimit, 0}, {"spec.activeDeadlineSeconds", j.ActiveDeadlineSeconds, 1}, {"spec.ttlSecondsAfterFinished", j.TTLSecondsAfterFinished, 0}} {
			switch {
			case f.v == nil:
				errs = append(errs, fieldError(j.Object, f.name, "required: a Job must be bounded and cleaned up"))
			case *f.v < f.min:
				errs = append(errs, fieldError(j.Object, f.name, "must be at least %d, got %d", f.min, *f.v))
			}
		}
		if j.RestartPolicy != "Never" && j.RestartPolicy != "OnFailure" {
			errs = append(errs, fieldError(j.Object, "spec.template.spec.restartPolicy", "must be Never or OnFailure, got %q", j.RestartPolicy))
		}
		if j.RunAsNonRoot == nil || !*j.RunAsNonRoot {
			errs = append(errs, fieldError(j.Object, "spec.template.spec.securityContext.runAsNonRoot", "must be true"))
		}
		if j.SeccompProfile != "RuntimeDefault" {
			errs = append(errs, fieldError(j.Object, "spec.template.spec.securityContext.seccompProfile.type", "must be RuntimeDefault, got %q", j.SeccompProfile))
		}
		for _, c := range j.Containers {
			sc := c.Field + ".securityContext."
			if c.RunAsNonRoot != nil && !*c.RunAsNonRoot {
				errs = append(errs, fieldError(j.Object, sc+"runAsNonRoot", "must not be false"))
			}
			if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
				errs = append(errs, fieldError(j.Object, sc+"readOnlyRootFilesystem", "must be true"))
			}
			if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
				errs = append(errs, fieldError(j.Object, sc+"allowPrivilegeEscalation", "must be false"))
			}
			if !slices.Contains(c.DropCapabilities, "ALL") {
				errs = append(errs, fieldError(j.Object, sc+"capabilities.drop", "must contain ALL, got %v", c.DropCapabilities))
			}
			for _, r := range []struct {
				field string
				set   map[string]string
				key   string
			}{{".resources.requests.cpu", c.Requests, "cpu"}, {".resources.requests.memory", c.Requests, "memory"}, {".resources.limits.memory", c.Limits, "memory"}} {
				if r.set[r.key] == "" {
					errs = append(errs, fieldError(j.Object, c.Field+r.field, "required"))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// CheckJobOrder checks that every Job other than the migration waits for the schema before it
// touches the database: a Job whose containers read DATABASE_URL starts with an init container
// running migrateImage -check (exit 3 while the schema is behind) with the same DATABASE_URL
// (its own role's, never the owner's), restartPolicy OnFailure so the kubelet retries the check
// in place rather than failing the pod, and an activeDeadlineSeconds longer than the migration
// Job's, which it waits for. The migration Job is the one whose main container runs
// migrateImage without -check; its deadline leaves the functions, which wait for it by
// failing at start, time to become ready within ProgressDeadline.
func (m *Manifests) CheckJobOrder(migrateImage string) error {
	var errs []error
	var migration *Job
	for i, j := range m.Jobs {
		if cs := j.MainContainers(); len(cs) == 1 && cs[0].Image == migrateImage && !slices.Contains(cs[0].Args, "-check") {
			migration = &m.Jobs[i]
		}
	}
	if migration == nil && len(m.Jobs) > 0 {
		errs = append(errs, fmt.Errorf("no migration Job (a Job running %s): the other Jobs would wait forever", migrateImage))
	}
	if migration != nil && migration.ActiveDeadlineSeconds != nil {
		if d := time.Duration(*migration.ActiveDeadlineSeconds) * time.Second; d+KubeletMaxRestartDelay > ProgressDeadline {
			errs = append(errs, fieldError(migration.Object, "spec.activeDeadlineSeconds",
				"%v, plus the kubelet's %v between restarts of a function waiting for it, exceeds Knative's progress deadline %v: the new revisions could fail", d, KubeletMaxRestartDelay, ProgressDeadline))
		}
	}
	for _, j := range m.Jobs {
		if migration != nil && j.Name == migration.Name {
			continue
		}
		var url *EnvVar
		for _, c := range j.MainContainers() {
			if e, ok := c.Setting("DATABASE_URL"); ok {
				url = &e
			}
		}
		if url == nil {
			continue
		}
		if len(j.Containers) == 0 || !j.Containers[0].Init || j.Containers[0].Image != migrateImage || !slices.Equal(j.Containers[0].Args, []string{"-check"}) {
			errs = append(errs, fieldError(j.Object, "spec.template.spec.initContainers[0]", "must run %s with args [-check]: the Job reads the database and must wait for the migration", migrateImage))
		} else if e, ok := j.Containers[0].Setting("DATABASE_URL"); !ok || !sameSource(e, *url) {
			errs = append(errs, fieldError(j.Object, j.Containers[0].Field+".env", "DATABASE_URL must be the Job's own (%s), got %s", describeEnv(*url), describeEnv(e)))
		}
		if j.RestartPolicy != "OnFailure" {
			errs = append(errs, fieldError(j.Object, "spec.template.spec.restartPolicy", "must be OnFailure so the schema check retries in place until the migration is done, got %q", j.RestartPolicy))
		}
		if migration != nil && migration.ActiveDeadlineSeconds != nil && (j.ActiveDeadlineSeconds == nil || *j.ActiveDeadlineSeconds <= *migration.ActiveDeadlineSeconds) {
			errs = append(errs, fieldError(j.Object, "spec.activeDeadlineSeconds", "must be longer than Job %q's %d s, which it waits for", migration.Name, *migration.ActiveDeadlineSeconds))
		}
	}
	return errors.Join(errs...)
}

// The time a new revision has, and how late a crash-looping function may retry.
const (
	// ProgressDeadline is Knative Serving's progress-deadline (config-deployment): how long a
	// new revision's Deployment may take to become ready before the revision fails.
	ProgressDeadline = 600 * time.Second
	// KubeletMaxRestartDelay is the longest wait between restarts of a failing container
	// (CrashLoopBackOff: 10 s doubling up to 5 minutes).
	KubeletMaxRestartDelay = 300 * time.Second
)

// JobSharedSettings are the settings a Job running a function's image must give exactly as the
// function's Service does: the same database and role, the same slot and publication (relay
// -setup creates what the relay then streams).
var JobSharedSettings = []string{"DATABASE_URL", "RELAY_SLOT", "RELAY_PUBLICATION"}

// CheckJobSettings checks that a Job container running the image of a Service (a function's
// one-shot step, like relay -setup) gives each of JobSharedSettings exactly as the Service does
// (both unset counts as equal: both use the default), and any other setting both give alike.
func (m *Manifests) CheckJobSettings() error {
	var errs []error
	for _, j := range m.Jobs {
		for _, c := range j.MainContainers() {
			i := slices.IndexFunc(m.Services, func(s Service) bool { return s.Image == c.Image })
			if i < 0 {
				continue
			}
			s := m.Services[i]
			svc := map[string]EnvVar{}
			for _, e := range s.Env {
				svc[e.Name] = e
			}
			for _, name := range JobSharedSettings {
				je, jok := c.Setting(name)
				se, sok := svc[name]
				if jok != sok || (jok && !sameSource(je, se)) {
					errs = append(errs, fieldError(j.Object, c.Field+".env", "%s must be as Service %q gives it (%s), got %s", name, s.Name, describeEnv(se), describeEnv(je)))
				}
			}
			for _, je := range c.Env {
				if se, ok := svc[je.Name]; ok && !slices.Contains(JobSharedSettings, je.Name) && !sameSource(je, se) {
					errs = append(errs, fieldError(j.Object, c.Field+".env", "%s must be as Service %q gives it (%s), got %s", je.Name, s.Name, describeEnv(se), describeEnv(je)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// sameSource reports whether two env entries give the same value: the same literal or the same
// key of the same ConfigMap or Secret.
func sameSource(a, b EnvVar) bool {
	if (a.From == nil) != (b.From == nil) {
		return false
	}
	if a.From == nil {
		return a.Value == b.Value
	}
	return *a.From == *b.From
}

// describeEnv says where an env entry's value comes from, "unset" for the zero EnvVar.
func describeEnv(e EnvVar) string {
	switch {
	case e.Name == "":
		return "unset"
	case e.From != nil:
		return fmt.Sprintf("%s %s key %s", e.From.Kind, e.From.Name, e.From.Key)
	}
	return fmt.Sprintf("%q", e.Value)
}

// CheckKafkaAuth checks that every Kafka client of the manifests brings credentials: a Kafka
// Broker's config names a Secret (auth.secret.ref.name, eventing-kafka-broker
// control-plane/pkg/security/config.go), every KafkaSink has spec.auth.secret.ref, every
// KafkaSource enables SASL and TLS in spec.net with a Secret for each key.
func (m *Manifests) CheckKafkaAuth() error {
	var errs []error
	for _, b := range m.Brokers {
		if b.Class != "Kafka" {
			continue
		}
		if b.Config == nil {
			errs = append(errs, fieldError(b.Object, "spec.config", "a Kafka Broker needs its config ConfigMap"))
			continue
		}
		i := slices.IndexFunc(m.ConfigMaps, func(c ConfigMap) bool { return c.Name == b.Config.Name && c.Namespace == b.Config.Namespace })
		if i < 0 {
			continue // reported by CheckRefs
		}
		if m.ConfigMaps[i].Data["auth.secret.ref.name"] == "" {
			errs = append(errs, fieldError(m.ConfigMaps[i].Object, "data[auth.secret.ref.name]", "the Broker's Kafka credentials: required"))
		}
	}
	for _, s := range m.KafkaSinks {
		if s.AuthSecret == "" {
			errs = append(errs, fieldError(s.Object, "spec.auth.secret.ref.name", "required: the sink's Kafka credentials"))
		}
	}
	for _, k := range m.KafkaSources {
		if !k.SASL || !k.TLS || len(k.SASLSecrets) != 4 || slices.Contains(k.SASLSecrets, "") {
			errs = append(errs, fieldError(k.Object, "spec.net", "sasl and tls must be enabled with user, password, type and caCert from a Secret"))
		}
	}
	return errors.Join(errs...)
}

// Settings of a function that is its own Kafka client (functions/relay Config).
const (
	envKafkaBrokers  = "KAFKA_BROKERS"
	envKafkaTLS      = "KAFKA_TLS"
	envKafkaCAFile   = "KAFKA_TLS_CA_FILE"
	envSASLMechanism = "KAFKA_SASL_MECHANISM"
	envSASLUsername  = "KAFKA_SASL_USERNAME"
	envSASLPassword  = "KAFKA_SASL_PASSWORD"
)

// CheckServiceKafkaAuth checks that Service service, a Kafka client of its own (the relay),
// brings the credentials of KafkaUser user the way the Broker and the sinks do: the SASL
// mechanism, user name and password from the keys sasl.mechanism, user and password of the
// Secret infra/secrets makes for user (connect-kafka-<x> for connect-<x>, the one CheckACLs
// judges), KAFKA_TLS true with a CA file, and KAFKA_BROKERS the listener of the Kafka Broker's
// bootstrap.servers. None of these may be a literal: the local runtime gives settings by key
// and has no value for these keys, so locally they stay unset (plaintext to its own cluster).
func (m *Manifests) CheckServiceKafkaAuth(service, user string) error {
	i := slices.IndexFunc(m.Services, func(s Service) bool { return s.Name == service })
	if i < 0 {
		return fmt.Errorf("no Service %q", service)
	}
	s := m.Services[i]
	secret := "connect-kafka-" + strings.TrimPrefix(user, "connect-")
	env := map[string]int{}
	for j, e := range s.Env {
		env[e.Name] = j
	}
	var errs []error
	field := func(name string) string {
		if j, ok := env[name]; ok {
			return fmt.Sprintf("spec.template.spec.containers[0].env[%d]", j)
		}
		return "spec.template.spec.containers[0].env"
	}
	// value is what the setting resolves to on the cluster, "" when unset or a Secret's.
	value := func(name string) (EnvVar, string, bool) {
		j, ok := env[name]
		if !ok {
			errs = append(errs, fieldError(s.Object, field(name), "%s: required (the Kafka client's credentials)", name))
			return EnvVar{}, "", false
		}
		e := s.Env[j]
		if e.From == nil {
			errs = append(errs, fieldError(s.Object, field(name), "%s must come from a ConfigMap or Secret, not a literal: locally it would be set with no Kafka to match", name))
			return e, "", false
		}
		if e.From.Kind == "ConfigMap" {
			c := slices.IndexFunc(m.ConfigMaps, func(c ConfigMap) bool { return c.Name == e.From.Name && c.Namespace == s.Namespace })
			if c < 0 {
				errs = append(errs, fieldError(s.Object, field(name), "%s: no ConfigMap %q in namespace %q", name, e.From.Name, s.Namespace))
				return e, "", false
			}
			v, ok := m.ConfigMaps[c].Data[e.From.Key]
			if !ok {
				errs = append(errs, fieldError(s.Object, field(name), "%s: ConfigMap %q has no key %q", name, e.From.Name, e.From.Key))
				return e, "", false
			}
			return e, v, true
		}
		return e, "", true
	}
	for _, k := range []struct{ env, key string }{{envSASLMechanism, "sasl.mechanism"}, {envSASLUsername, "user"}, {envSASLPassword, "password"}} {
		if e, _, ok := value(k.env); ok && (e.From.Kind != "Secret" || e.From.Name != secret || e.From.Key != k.key) {
			errs = append(errs, fieldError(s.Object, field(k.env), "%s must be key %s of Secret %s (KafkaUser %s), got %s %s key %s", k.env, k.key, secret, user, e.From.Kind, e.From.Name, e.From.Key))
		}
	}
	// configured is the ConfigMap value of a setting that must be checkable.
	configured := func(name string) (string, bool) {
		e, v, ok := value(name)
		if ok && e.From.Kind != "ConfigMap" {
			errs = append(errs, fieldError(s.Object, field(name), "%s must come from a ConfigMap, so it can be checked", name))
			return "", false
		}
		return v, ok
	}
	if v, ok := configured(envKafkaTLS); ok && v != "true" {
		errs = append(errs, fieldError(s.Object, field(envKafkaTLS), "%s must be true: the password would cross the network in a connection anyone on the path can read, got %q", envKafkaTLS, v))
	}
	if v, ok := configured(envKafkaCAFile); ok && v == "" {
		errs = append(errs, fieldError(s.Object, field(envKafkaCAFile), "%s: the cluster CA's path, required", envKafkaCAFile))
	}
	if v, ok := configured(envKafkaBrokers); ok {
		var listeners []string
		for _, b := range m.Brokers {
			if b.Class != "Kafka" || b.Config == nil {
				continue
			}
			if c := slices.IndexFunc(m.ConfigMaps, func(c ConfigMap) bool { return c.Name == b.Config.Name && c.Namespace == b.Config.Namespace }); c >= 0 {
				listeners = append(listeners, m.ConfigMaps[c].Data["bootstrap.servers"])
			}
		}
		if len(listeners) > 0 && !slices.Contains(listeners, v) { // none: CheckRefs reports the missing config
			errs = append(errs, fieldError(s.Object, field(envKafkaBrokers), "%s is %q, not the authenticated listener the Kafka Broker uses (bootstrap.servers %q)", envKafkaBrokers, v, listeners))
		}
	}
	return errors.Join(errs...)
}

// Names of eventing-kafka-broker's data-plane configuration (control-plane/config/
// eventing-kafka-broker/200-controller/500-controller.yaml; control-plane/pkg/reconciler/
// broker/broker.go ConsumerConfigKey).
const (
	DataPlaneConfigMap      = "config-kafka-broker-data-plane"
	DataPlaneNamespace      = "knative-eventing"
	DataPlaneConsumerConfig = "config-kafka-broker-consumer.properties"
	consumerAutoOffsetReset = "auto.offset.reset"
	consumerOffsetEarliest  = "earliest"
)

// CheckEarliestOffset checks that the manifests ship the Kafka Broker's data-plane ConfigMap
// with auto.offset.reset=earliest in its consumer properties: how a Trigger's new consumer
// group starts (control-plane/pkg/kafka/data_plane_config.go IsOffsetLatest, latest when the
// key or the property is missing).
func (m *Manifests) CheckEarliestOffset() error {
	i := slices.IndexFunc(m.ConfigMaps, func(c ConfigMap) bool { return c.Name == DataPlaneConfigMap && c.Namespace == DataPlaneNamespace })
	if i < 0 {
		return fmt.Errorf("no ConfigMap %s/%s: Triggers would start at the latest offset and miss every event written before they first consume", DataPlaneNamespace, DataPlaneConfigMap)
	}
	c := m.ConfigMaps[i]
	v, ok := properties(c.Data[DataPlaneConsumerConfig])[consumerAutoOffsetReset]
	if !ok || v != consumerOffsetEarliest {
		return fieldError(c.Object, "data["+DataPlaneConsumerConfig+"]", "%s must be %s, got %q", consumerAutoOffsetReset, consumerOffsetEarliest, v)
	}
	return nil
}

// properties parses Java properties text as far as key=value and key: value lines go (comments
// with # or !, surrounding blanks trimmed); the last value of a key wins, as in Java.
func properties(text string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader([]byte(text)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			out[line] = ""
			continue
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out
}
