//go:build !nolambda

package runtime

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

// startLambda serves fn through aws-lambda-go; it does not return.
func startLambda(ctx context.Context, fn Function, d Deps) error {
	opts := []lambda.Option{lambda.WithContext(ctx)}
	if fn.Close != nil {
		opts = append(opts, lambda.WithEnableSIGTERM(func() { _ = fn.Close() }))
	}
	lambda.StartWithOptions(LambdaHandler(fn, d), opts...)
	return nil
}
