package e2e

import (
	"net/http"
	"testing"
)

// apiTransport is the transport of the front door's API clients in these tests.
func apiTransport(t *testing.T) http.RoundTripper { return http.DefaultTransport }
