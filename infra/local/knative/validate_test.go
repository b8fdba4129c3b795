package knative

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	manifestDir  = "../../knative"         // what skaffold applies: functions that exist
	pendingDir   = "../../knative-pending" // manifests of functions not built yet
	functionsDir = "../../../functions"
	skaffoldFile = "../../../skaffold.yaml"
	crdDir       = "testdata/crds"
)

// TestManifestsValidate checks every manifest in infra/knative and infra/knative-pending
// against the CRD schema of its kind and version. Only core kinds are skipped (SkipReason).
func TestManifestsValidate(t *testing.T) {
	for _, dir := range []string{manifestDir, pendingDir} {
		if err := Validate(dir, crdDir); err != nil {
			t.Errorf("%s does not validate:\n%v", dir, err)
		}
	}
}

// TestSkipOnlyCoreKinds keeps SkipReason to the kinds built into Kubernetes (the core group,
// networking.k8s.io and batch), which have no CRD: every custom kind must be validated.
func TestSkipOnlyCoreKinds(t *testing.T) {
	for k := range SkipReason {
		if !strings.HasPrefix(k, "v1/") && !strings.HasPrefix(k, "networking.k8s.io/v1/") && !strings.HasPrefix(k, "batch/v1/") {
			t.Errorf("SkipReason skips %s, a custom kind: validate it against its CRD instead", k)
		}
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
		KafkaSinkAPIVersion + "/KafkaSink",
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

// builtFunctions returns the folders of functions/ that hold a main package (main.go with
// "package main"): the functions that exist.
func builtFunctions(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(functionsDir)
	if err != nil {
		t.Fatalf("functions folder: %v", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && isMainPackage(t, filepath.Join(functionsDir, e.Name(), "main.go")) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatalf("no functions/*/main.go found under %s", functionsDir)
	}
	return names
}

// isMainPackage reports whether path exists and declares package main.
func isMainPackage(t *testing.T, path string) bool {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return false
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f.Name.Name == "main"
}

// TestServicesMatchFunctions checks both directions between infra/knative and functions/:
// every function (functions/<name>/main.go, package main) has a Service, and every Service
// runs the ko image of a function that exists, under the function's name. Manifests of
// functions not built yet live in infra/knative-pending, and a pending Service whose function
// has landed must move.
func TestServicesMatchFunctions(t *testing.T) {
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	built := builtFunctions(t)
	for _, name := range built {
		if _, ok := m.Service(name); !ok {
			t.Errorf("functions/%s has no Service in infra/knative/20-services.yaml (move it from infra/knative-pending, or add one)", name)
		}
	}
	for _, s := range m.Services {
		fn := s.FunctionName()
		switch {
		case fn != s.Name:
			t.Errorf("Service %q runs image %q, want ko://github.com/myscrollr/connect/functions/%s", s.Name, s.Image, s.Name)
		case !slices.Contains(built, fn):
			t.Errorf("Service %q runs functions/%s, which has no main.go (package main): its manifests belong in infra/knative-pending", s.Name, fn)
		}
	}

	pending, err := Load(manifestDir, pendingDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range pending.Services {
		if _, deployed := m.Service(s.Name); deployed {
			continue
		}
		if s.FunctionName() != s.Name {
			t.Errorf("pending Service %q runs image %q, want ko://github.com/myscrollr/connect/functions/%s", s.Name, s.Image, s.Name)
		}
		if slices.Contains(built, s.Name) {
			t.Errorf("functions/%s exists: move its Service, Triggers and sources from infra/knative-pending into infra/knative", s.Name)
		}
	}
}

// TestSkaffoldBuildsEveryService checks that skaffold.yaml builds exactly the images of the
// Services and Jobs in infra/knative: one ko artifact per image, none for pending functions.
func TestSkaffoldBuildsEveryService(t *testing.T) {
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(skaffoldFile)
	if err != nil {
		t.Fatal(err)
	}
	var artifacts []string
	for line := range strings.Lines(string(data)) {
		if img, ok := strings.CutPrefix(strings.TrimSpace(line), "- image: "); ok {
			artifacts = append(artifacts, img)
		}
	}
	var images []string
	for _, s := range m.Services {
		images = append(images, s.Image)
	}
	for _, j := range m.Jobs {
		for _, c := range j.Containers {
			images = append(images, c.Image)
		}
	}
	slices.Sort(artifacts)
	slices.Sort(images)
	images = slices.Compact(images) // the relay's Service and its setup Job share an image
	if !slices.Contains(images, MigrateImage) {
		t.Fatalf("no Job runs %s: %v", MigrateImage, images)
	}
	if !slices.Equal(artifacts, images) {
		t.Errorf("skaffold.yaml builds %v, infra/knative runs %v", artifacts, images)
	}
}

// stringLiterals returns the string constants written in the non-test Go files of dir.
func stringLiterals(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), f, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					out[s] = true
				}
			}
			return true
		})
	}
	return out
}

// TestServiceEnvIsRead checks that every setting a Service in infra/knative gives its
// function is read by it: named in the function's own code (its Config) or in the runtime's
// (shared/runtime). A setting nobody reads is dead configuration and must go. (The other
// direction, a required setting missing from the Service, fails the function at start, which
// the local stack and the e2e tests do from these same manifests.) Likewise every setting a
// Job's container gets is named in its program's own folder (the ko path of its image; a Job
// runs one command, not the runtime).
func TestServiceEnvIsRead(t *testing.T) {
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	runtimeNames := stringLiterals(t, "../../../shared/runtime")
	for _, s := range m.Services {
		own := stringLiterals(t, filepath.Join(functionsDir, s.Name))
		// A shared package (or wasmhost) the function imports may read a setting for it
		// (shared/payments reads the Stripe settings of every function that calls Stripe).
		for lit := range own {
			for _, mod := range []string{"shared/", "wasmhost"} {
				pkg, ok := strings.CutPrefix(lit, "github.com/myscrollr/connect/"+mod)
				if !ok || (mod == "shared/" && pkg == "") || (mod == "wasmhost" && pkg != "") {
					continue
				}
				for name := range stringLiterals(t, filepath.Join("../../..", mod, pkg)) {
					own[name] = true
				}
			}
		}
		for _, e := range s.Env {
			if !own[e.Name] && !runtimeNames[e.Name] {
				t.Errorf("Service %q sets %s, which neither functions/%s, the shared packages it imports nor shared/runtime read: remove it", s.Name, e.Name, s.Name)
			}
		}
	}
	if len(m.Jobs) == 0 {
		t.Fatal("no Jobs in infra/knative")
	}
	for _, j := range m.Jobs {
		for _, c := range j.Containers {
			path, ok := strings.CutPrefix(c.Image, ImagePrefix)
			if !ok {
				t.Errorf("Job %q container %s: image %q is not built here", j.Name, c.Name, c.Image)
				continue
			}
			own := stringLiterals(t, filepath.Join("../../..", filepath.FromSlash(path)))
			for _, e := range c.Env {
				if !own[e.Name] {
					t.Errorf("Job %q container %s sets %s, which %s does not read: remove it", j.Name, c.Name, e.Name, path)
				}
			}
		}
	}
}

// TestSkaffoldDependenciesAndOrder checks that every artifact is rebuilt when the module graph
// changes (every go.mod and go.sum, go.work, go.work.sum: the build runs in workspace mode) and
// that infra/kafka (topics and users) is applied before infra/knative.
func TestSkaffoldDependenciesAndOrder(t *testing.T) {
	data, err := os.ReadFile(skaffoldFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Build struct {
			Artifacts []struct {
				Image string `json:"image"`
				Ko    struct {
					Dir          string   `json:"dir"`
					Flags        []string `json:"flags"`
					Dependencies struct {
						Paths []string `json:"paths"`
					} `json:"dependencies"`
				} `json:"ko"`
			} `json:"artifacts"`
		} `json:"build"`
		Manifests struct {
			RawYaml []string `json:"rawYaml"`
		} `json:"manifests"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Build.Artifacts) == 0 {
		t.Fatal("no artifacts")
	}
	for _, a := range cfg.Build.Artifacts {
		fn := strings.TrimPrefix(a.Image, "ko://github.com/myscrollr/connect/")
		for _, want := range []string{fn + "/**", "shared/**", "events/**", "schemas/**", "go.work", "go.work.sum", "**/go.mod", "**/go.sum"} {
			if !slices.Contains(a.Ko.Dependencies.Paths, want) {
				t.Errorf("%s: dependencies lack %s", a.Image, want)
			}
		}
		// The production build flags (Makefile BUILDFLAGS): no Lambda adapter in Knative images.
		if !slices.Contains(a.Ko.Flags, "-tags=nolambda") || !slices.Contains(a.Ko.Flags, "-trimpath") {
			t.Errorf("%s: flags %v lack -trimpath or -tags=nolambda", a.Image, a.Ko.Flags)
		}
		// ko builds the import path of a ko:// image in dir, which must be its module.
		if mod := strings.SplitN(fn, "/", 2)[0]; a.Ko.Dir != mod {
			t.Errorf("%s: ko.dir %q, want its module %q", a.Image, a.Ko.Dir, mod)
		}
	}
	if got := cfg.Manifests.RawYaml; !slices.Equal(got, []string{"infra/kafka/*.yaml", "infra/knative/*.yaml"}) {
		t.Errorf("rawYaml = %v, want infra/kafka before infra/knative", got)
	}
}
