package main

import (
	"context"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/myscrollr/connect/shared/wasmnorm"
	"github.com/myscrollr/connect/wasmhost"
)

func main() {
	wasmhost.MaybeWorker() // first: a worker process of the WASM transforms never returns
	runtime.Main("poll", setup)
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
	wcfg := cfg.Wasm
	wcfg.Logger = d.Logger
	host, err := wasmhost.New(ctx, wcfg)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	svc, err := New(cfg, pool, d.Logger, time.Now, wasmnorm.Normalizer{Host: host, DB: pool})
	if err != nil {
		_ = host.Close(context.Background())
		pool.Close()
		return runtime.Function{}, err
	}
	return runtime.Function{
		Name:   "poll",
		HTTP:   svc.Routes(v),
		Events: svc.HandleEvent,
		Ready:  pool.Ping,
		Close:  func() error { pool.Close(); return host.Close(context.Background()) },
	}, nil
}
