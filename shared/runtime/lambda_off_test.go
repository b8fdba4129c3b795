//go:build nolambda

package runtime

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A Knative-only build refuses to run on Lambda with a reason instead of serving HTTP there.
func TestKnativeOnlyBuildRefusesLambda(t *testing.T) {
	var out bytes.Buffer
	env := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
	code := run(context.Background(), "catalog", func(k string) string { return env[k] }, &out,
		func(context.Context, Deps) (Function, error) { return Function{}, nil })
	if code != 1 || !strings.Contains(out.String(), "nolambda") {
		t.Fatalf("exit %d, log %s", code, out.String())
	}
}
