package settings_test

import (
	"strings"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/settings"
)

func TestProblemsNameFieldAndVariable(t *testing.T) {
	p := settings.Check("install")
	p.DatabaseURL("postgres://u:hunter2@[bad")
	p.Logto("ftp://auth.example", "")
	p.ManagementAPI("", "s", "not a url")
	err := p.Err()
	if err == nil {
		t.Fatal("no problems reported")
	}
	msg := err.Error()
	for _, want := range []string{
		"install: Config.DatabaseURL (DATABASE_URL): not a valid PostgreSQL connection string",
		`install: Config.LogtoEndpoint (LOGTO_ENDPOINT): "ftp://auth.example" is not an http(s) URL`,
		"install: Config.APIResource (LOGTO_API_RESOURCE): required",
		"install: Config.LogtoAppID (LOGTO_M2M_APP_ID): required",
		`install: Config.LogtoManagementResource (LOGTO_MANAGEMENT_RESOURCE): "not a url" is not an http(s) URL`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("a password reached the message: %s", msg)
	}
	if strings.Contains(msg, "LOGTO_M2M_APP_SECRET") {
		t.Errorf("a set secret was reported: %s", msg)
	}
}

func TestNoProblems(t *testing.T) {
	p := settings.Check("notify")
	p.DatabaseURL("postgres://u@127.0.0.1/db")
	p.Logto("http://127.0.0.1:3001", "https://api.example")
	p.ManagementAPI("id", "secret", "")
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"https://a.example": true, "http://127.0.0.1:1/x": true, "https://": false, "mailto:x@y": false, "": false} {
		if settings.IsHTTPURL(s) != want {
			t.Errorf("IsHTTPURL(%q) = %v", s, !want)
		}
	}
}

func TestDurationAndInt(t *testing.T) {
	env := map[string]string{"A_TIMEOUT": " 2s ", "A_BAD": "soon", "A_N": "7", "A_NOT": "x"}
	getenv := func(k string) string { return env[k] }
	p := settings.Check("poll")
	var d, bad, unset time.Duration
	var n, notN int
	p.Duration(getenv, "Timeout", "A_TIMEOUT", time.Second, &d)
	p.Duration(getenv, "Bad", "A_BAD", time.Second, &bad)
	p.Duration(getenv, "Unset", "A_UNSET", time.Minute, &unset)
	p.Int(getenv, "N", "A_N", 1, &n)
	p.Int(getenv, "Not", "A_NOT", 3, &notN)
	if d != 2*time.Second || bad != time.Second || unset != time.Minute || n != 7 || notN != 3 {
		t.Fatalf("got %v %v %v %d %d", d, bad, unset, n, notN)
	}
	msg := p.Err().Error()
	for _, want := range []string{`poll: Config.Bad (A_BAD): "soon" is not a duration`, `poll: Config.Not (A_NOT): "x" is not an integer`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in %s", want, msg)
		}
	}
}
