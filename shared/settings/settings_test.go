package settings_test

import (
	"strings"
	"testing"

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
