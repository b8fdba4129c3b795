package main

import (
	"context"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main(Name, setup)
}

func setup(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return runtime.Function{}, err
	}
	v, err := auth.NewVerifier(ctx, auth.Config{
		Issuer:   cfg.LogtoEndpoint + "/oidc",
		Audience: cfg.APIResource,
		Logger:   d.Logger,
	}, nil)
	if err != nil {
		return runtime.Function{}, err
	}
	pool, err := db.OpenCurrent(ctx, cfg.DatabaseURL)
	if err != nil {
		return runtime.Function{}, err
	}
	svc, err := New(pool, cfg, d.Logger, time.Now, nil)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	svc.WakeAtStart()
	return runtime.Function{
		Name:   Name,
		HTTP:   svc.Routes(v),
		Events: svc.HandleEvent,
		Ready:  pool.Ping,
		Close:  func() error { svc.Close(); pool.Close(); return nil },
	}, nil
}
