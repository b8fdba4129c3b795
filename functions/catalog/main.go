package main

import (
	"context"
	"os"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("catalog", setup)
}

func setup(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return runtime.Function{}, err
	}
	var v *auth.Verifier
	if cfg.LogtoEndpoint != "" {
		// Discovery that fails here does not fail start-up (auth.NewVerifier retries it), so the
		// public GETs never wait on the identity provider.
		v, err = auth.NewVerifier(ctx, auth.Config{
			Issuer:   cfg.LogtoEndpoint + "/oidc",
			Audience: cfg.APIResource,
			Logger:   d.Logger,
		}, nil)
		if err != nil {
			return runtime.Function{}, err
		}
	} else {
		d.Logger.Warn("catalog: LOGTO_ENDPOINT and LOGTO_API_RESOURCE are not set: review writes answer 503")
	}
	pool, err := db.OpenCurrent(ctx, cfg.poolURL())
	if err != nil {
		return runtime.Function{}, err
	}
	shed := NewShedder(cfg.MaxConns, cfg.MaxWaiting, cfg.QueueTimeout, cfg.RetryAfter)
	return runtime.Function{
		Name:  "catalog",
		HTTP:  Routes(&Store{pool: pool}, v, shed),
		Ready: pool.Ping,
		Close: func() error { pool.Close(); return nil },
	}, nil
}
