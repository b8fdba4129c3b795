package knative

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifestsAuthenticateSenders(t *testing.T) {
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckSenders(); err != nil {
		t.Fatal(err)
	}
	if err := CheckClusterLocal(manifestDir); err != nil {
		t.Fatal(err)
	}
	// Something must be checked: uninstall receives user.deleted.
	found := false
	for _, tr := range m.Triggers {
		found = found || tr.Subscriber.Audience == ServiceAudience("connect", "uninstall")
	}
	if !found {
		t.Fatal("no Trigger delivers to uninstall with its audience")
	}
}

func TestCheckSendersFindsMistakes(t *testing.T) {
	m, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Triggers {
		if m.Triggers[i].Subscriber.Ref != nil && m.Triggers[i].Subscriber.Ref.Kind == "Service" {
			m.Triggers[i].Subscriber.Audience = "serving.knative.dev/service/connect/catalog"
			break
		}
	}
	for i := range m.Services {
		if m.Services[i].Name == "uninstall" {
			m.Services[i].Env = nil
		}
	}
	err = m.CheckSenders()
	if err == nil || !strings.Contains(err.Error(), "spec.subscriber.audience") || !strings.Contains(err.Error(), EnvEventsAudience) {
		t.Fatalf("CheckSenders = %v; want the wrong audience and the missing setting named", err)
	}

	dir := t.TempDir()
	svc := "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: catalog\n  labels:\n    app: x\n"
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckClusterLocal(dir); err == nil || !strings.Contains(err.Error(), "cluster-local") {
		t.Fatalf("CheckClusterLocal = %v; want the public Service named", err)
	}
}

// TestPendingManifestsAuthenticateSenders holds infra/knative-pending to the same sender
// identity rules, so the manifests capability work copies are already correct.
func TestPendingManifestsAuthenticateSenders(t *testing.T) {
	m, err := Load(manifestDir, pendingDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CheckSenders(); err != nil {
		t.Fatal(err)
	}
	if err := CheckClusterLocal(pendingDir); err != nil {
		t.Fatal(err)
	}
}
