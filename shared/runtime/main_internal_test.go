package runtime

import (
	"bytes"
	"context"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// A function that receives events does not start without sender verification: it would
// otherwise accept forged events or refuse every real one.
func TestMainRefusesEventsWithoutSenderSettings(t *testing.T) {
	env := map[string]string{"PORT": "0", "LISTEN_HOST": "127.0.0.1"}
	var out bytes.Buffer
	closed := false
	code := run(context.Background(), "uninstall", func(k string) string { return env[k] }, &out,
		func(context.Context, Deps) (Function, error) {
			return Function{Events: func(context.Context, cloudevents.Event) error { return nil },
				Close: func() error { closed = true; return nil }}, nil
		})
	if code != 1 {
		t.Fatalf("run exited %d, want 1", code)
	}
	if !strings.Contains(out.String(), "EVENTS_OIDC_ISSUER") || !closed {
		t.Fatalf("closed=%v, log does not name EVENTS_OIDC_ISSUER: %s", closed, out.String())
	}
}

func TestSenderSettingsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"EVENTS_OIDC_ISSUER": "https://kubernetes.default.svc"}, "EVENTS_OIDC_AUDIENCE"},
		{map[string]string{"EVENTS_OIDC_AUDIENCE": "serving.knative.dev/service/connect/uninstall"}, "EVENTS_OIDC_ISSUER"},
		{map[string]string{"EVENTS_OIDC_ISSUER": "ftp://x", "EVENTS_OIDC_AUDIENCE": "a"}, "EVENTS_OIDC_ISSUER"},
	} {
		_, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.env, err, tc.want)
		}
	}
	c, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"EVENTS_OIDC_ISSUER": "https://kubernetes.default.svc", "EVENTS_OIDC_AUDIENCE": "aud",
			"EVENTS_OIDC_SUBJECTS": " a, ,b ", "EVENTS_OIDC_ALGORITHMS": "RS256"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Senders.Subjects, "|") != "a|b" || strings.Join(c.Senders.Algorithms, "|") != "RS256" {
		t.Fatalf("parsed %+v", c.Senders)
	}
}
