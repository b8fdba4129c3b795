package e2e

import (
	"net/http"
	"testing"

	"github.com/myscrollr/connect/schemas"
	"github.com/myscrollr/connect/tests/apicheck"
)

// apiTransport is the transport of the front door's API clients in these tests: every request
// and answer to a described route is held to schemas/openapi/connect.yaml.
func apiTransport(t *testing.T) http.RoundTripper {
	t.Helper()
	spec, err := schemas.OpenAPI.ReadFile("openapi/connect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := apicheck.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c.Transport(t, nil)
}
