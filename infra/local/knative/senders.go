package knative

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Sender identity settings a Service declares (shared/runtime reads them).
const (
	EnvEventsAudience = "EVENTS_OIDC_AUDIENCE"
	EnvEventsIssuer   = "EVENTS_OIDC_ISSUER"
	// LabelVisibility makes a Knative Service reachable only inside the cluster.
	LabelVisibility = "networking.knative.dev/visibility"
)

// ServiceAudience is the sender-token audience of a Knative Service, in the form Knative
// Eventing gives its own addressables: <group>/<kind>/<namespace>/<name>, lower case.
func ServiceAudience(namespace, name string) string {
	return strings.ToLower("serving.knative.dev/service/" + namespace + "/" + name)
}

// CheckSenders checks that events can only come from Eventing: every destination that is a
// Service declares an audience, that audience is ServiceAudience of the Service, and the
// Service reads it (EVENTS_OIDC_AUDIENCE, literal, the same value) with EVENTS_OIDC_ISSUER.
// Every error found is reported.
func (m *Manifests) CheckSenders() error {
	var errs []error
	check := func(o Object, field string, d *Destination) {
		if d == nil || d.Ref == nil || d.Ref.Kind != "Service" {
			return
		}
		want := ServiceAudience(d.Ref.Namespace, d.Ref.Name)
		if d.Audience != want {
			errs = append(errs, fieldError(o, field+".audience", "must be %q (the sender-token audience of Service %s), got %q", want, d.Ref.Name, d.Audience))
		}
		svc, ok := m.Service(d.Ref.Name)
		if !ok {
			return // reported by the reference checks
		}
		var aud, iss bool
		for _, e := range svc.Env {
			switch e.Name {
			case EnvEventsAudience:
				aud = e.From == nil && e.Value == want
			case EnvEventsIssuer:
				iss = true
			}
		}
		if !aud || !iss {
			errs = append(errs, fieldError(svc.Object, "spec.template.spec.containers[0].env",
				"receives events (%s %s), so it must set %s to the literal %q and read %s", o.Kind, o.Name, EnvEventsAudience, want, EnvEventsIssuer))
		}
	}
	for _, t := range m.Triggers {
		check(t.Object, "spec.subscriber", &t.Subscriber)
		if t.Delivery != nil {
			check(t.Object, "spec.delivery.deadLetterSink", t.Delivery.DeadLetterSink)
		}
	}
	for _, p := range m.PingSources {
		check(p.Object, "spec.sink", &p.Sink)
	}
	for _, k := range m.KafkaSources {
		check(k.Object, "spec.sink", &k.Sink)
		if k.Delivery != nil {
			check(k.Object, "spec.delivery.deadLetterSink", k.Delivery.DeadLetterSink)
		}
	}
	return errors.Join(errs...)
}

// CheckClusterLocal checks that every Knative Service of the YAML files in dir is labelled
// cluster-local: only the gateway is public.
func CheckClusterLocal(dir string) error {
	var errs []error
	err := eachDocument(dir, func(d Document) error {
		var h struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(d.JSON, &h); err != nil {
			return fmt.Errorf("%s: document %d: %w", d.File, d.Index+1, err)
		}
		if h.Kind == "Service" && strings.HasPrefix(h.APIVersion, "serving.knative.dev/") &&
			h.Metadata.Labels[LabelVisibility] != "cluster-local" {
			errs = append(errs, fmt.Errorf("%s: Service %q: metadata.labels[%s] must be cluster-local (only the gateway is public)",
				d.File, h.Metadata.Name, LabelVisibility))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}
