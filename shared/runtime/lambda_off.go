//go:build nolambda

package runtime

import (
	"context"
	"errors"
)

// startLambda refuses: this binary was built for Knative only (tag nolambda), without
// aws-lambda-go and the Kafka binding the Lambda adapter needs, for a smaller binary and a
// faster cold start.
func startLambda(context.Context, Function, Deps) error {
	return errors.New("AWS_LAMBDA_RUNTIME_API is set but this binary was built with -tags nolambda; build it without that tag for AWS Lambda")
}
