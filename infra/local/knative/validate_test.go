package knative

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	manifestDir = "../../knative"
	crdDir      = "testdata/crds"
)

// TestManifestsValidate checks every manifest in infra/knative against the CRD schema of its
// kind and version. KafkaSink and core kinds are skipped (see SkipReason).
func TestManifestsValidate(t *testing.T) {
	if err := Validate(manifestDir, crdDir); err != nil {
		t.Fatalf("manifests do not validate:\n%v", err)
	}
}

func TestLoadCRDsCoversEveryKind(t *testing.T) {
	s, err := LoadCRDs(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"serving.knative.dev/v1/Service",
		"eventing.knative.dev/v1/Broker",
		"eventing.knative.dev/v1/Trigger",
		"sources.knative.dev/v1/PingSource",
		"sources.knative.dev/v1beta2/PingSource",
		"sources.knative.dev/v1beta1/KafkaSource",
		"sources.knative.dev/v1/KafkaSource",
	} {
		if s.byKind[k] == nil {
			t.Errorf("no schema for %s", k)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	s, err := LoadCRDs(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	trigger := `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: t
  namespace: connect
spec:
  broker: connect
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: install}
`
	cases := []struct {
		name, yaml, want string
	}{
		{"retry is a string", `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: b}
spec:
  delivery:
    retry: "five"
`, "spec.delivery.retry"},
		{"retry beyond int32", `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: b}
spec:
  delivery:
    retry: 3000000000
`, "spec.delivery.retry"},
		{"unknown field in a strict object", `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata: {name: p}
spec:
  schedule: "* * * * *"
  scheduel: "oops"
`, "scheduel"},
		{"topics is not a list", `apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: k}
spec:
  bootstrapServers: [a:9092]
  topics: integrations.demo-push.data
`, "spec.topics"},
		{"required field missing", `apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: k}
spec:
  topics: [a]
`, "bootstrapServers"},
		{"containerPort is a string", `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: s}
spec:
  template:
    spec:
      containers:
        - image: x
          ports: [{containerPort: "8080"}]
`, "containerPort"},
		{"bad object name", strings.Replace(trigger, "name: t\n", "name: Not_A_Name\n", 1), "metadata.name"},
		{"unknown kind", `apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
`, "no CRD schema"},
		{"subscriber ref kind is a number", strings.Replace(trigger, "kind: Service,", "kind: 7,", 1), "spec.subscriber.ref.kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.ValidateFile("bad.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted an invalid manifest")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml") {
				t.Fatalf("error %q does not name %q and the file", err, c.want)
			}
		})
	}
	// The valid trigger, x-kubernetes-preserve-unknown-fields (trigger delivery timeout) and
	// x-kubernetes-int-or-string (probe port as a name) are accepted.
	ok := trigger + "  delivery:\n    timeout: PT5S\n    retry: 2\n"
	if err := s.ValidateFile("ok.yaml", []byte(ok)); err != nil {
		t.Fatalf("valid trigger rejected: %v", err)
	}
	svc := `apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: s}
spec:
  template:
    spec:
      containers:
        - image: x
          readinessProbe: {httpGet: {path: /readyz, port: http1}}
          livenessProbe: {httpGet: {path: /healthz, port: 8080}}
`
	if err := s.ValidateFile("ok.yaml", []byte(svc)); err != nil {
		t.Fatalf("int-or-string port rejected: %v", err)
	}
}

// TestEveryFunctionHasService checks that each function folder under functions/ has a Service
// running its image. Folders not created yet are simply not there.
func TestEveryFunctionHasService(t *testing.T) {
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Services {
		if s.FunctionName() != s.Name {
			t.Errorf("Service %q runs image %q, want ko://github.com/myscrollr/connect/functions/%s", s.Name, s.Image, s.Name)
		}
	}
	entries, err := os.ReadDir("../../../functions")
	if err != nil {
		t.Skipf("no functions folder: %v", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join("../../../functions", e.Name(), "main.go")); err != nil {
			continue // not a function binary (yet)
		}
		if _, ok := m.Service(e.Name()); !ok {
			t.Errorf("functions/%s has no Service in infra/knative", e.Name())
		}
	}
}
