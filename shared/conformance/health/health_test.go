package health_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/myscrollr/connect/events"
	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/shared/conformance/health"
)

// TestJudgeFollowsTheContract holds Judge to schemas/json/health.json: a body is read as up,
// degraded or down exactly when the schema accepts it, and refused (a "body:" reason) exactly
// when the schema refuses it.
func TestJudgeFollowsTheContract(t *testing.T) {
	raw, err := schemas.JSON.ReadFile("json/health.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("health.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("health.json")
	if err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string]string{
		`{"status":"ok"}`:      events.HealthHealthy,
		`{"status":"pass"}`:    events.HealthHealthy,
		`{"status":"up"}`:      events.HealthHealthy,
		`{"status":"healthy"}`: events.HealthHealthy,
		`{"status":"ok","version":"1.2.3","checks":{"db":[{"status":"pass"}]},"extra":1}`: events.HealthHealthy,
		`{"status":"degraded"}`:                  events.HealthDegraded,
		`{"status":"warn","output":"slow disk"}`: events.HealthDegraded,
		`{"status":"down"}`:                      events.HealthOffline,
		`{"status":"fail"}`:                      events.HealthOffline,
		`{"status":"error"}`:                     events.HealthOffline,
		`{"status":"OK"}`:                        "",
		`{"status":"unknown"}`:                   "",
		`{"status":1}`:                           "",
		`{"status":null}`:                        "",
		`{}`:                                     "",
		`[]`:                                     "",
		`null`:                                   "",
		`"ok"`:                                   "",
		`OK`:                                     "",
		``:                                       "",
	} {
		status, reason := health.Judge([]byte(body))
		refused := strings.HasPrefix(reason, "body:")
		if want == "" != refused || (want != "" && status != want) || (refused && status != events.HealthOffline) {
			t.Errorf("Judge(%s) = %s, %q; want %q", body, status, reason, want)
		}
		if status != events.HealthHealthy && reason == "" {
			t.Errorf("Judge(%s) = %s without a reason", body, status)
		}
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
		valid := err == nil && schema.Validate(v) == nil
		if valid == refused {
			t.Errorf("%s: the schema says valid=%v but Judge refused=%v", body, valid, refused)
		}
	}
}
