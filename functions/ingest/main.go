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
	runtime.Main("ingest", setup)
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
	// The WASM normalizer plugs in here when it lands (records.Normalizer); until then records
	// are stored as validated.
	svc, err := New(cfg, pool, nil, d.Logger, time.Now)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	return runtime.Function{
		Name:   "ingest",
		HTTP:   svc.Routes(v),
		Events: svc.HandleEvent,
		Ready:  pool.Ping,
		Close:  func() error { pool.Close(); return nil },
	}, nil
}
