package main

import (
	"context"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/runtime"
	"github.com/myscrollr/connect/wasmhost"
)

func main() {
	wasmhost.MaybeWorker() // first: a worker process of the WASM transforms never returns
	runtime.Main("registry", setup)
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
	lc, err := logto.New(logto.Config{
		Endpoint:  cfg.LogtoEndpoint,
		AppID:     cfg.LogtoAppID,
		AppSecret: cfg.LogtoAppSecret,
		Resource:  cfg.LogtoManagementResource, // empty: logto.DefaultResource
		Logger:    d.Logger,
	})
	if err != nil {
		return runtime.Function{}, err
	}
	checks, err := NewChecker(cfg)
	if err != nil {
		return runtime.Function{}, err
	}
	pool, err := db.OpenCurrent(ctx, cfg.DatabaseURL)
	if err != nil {
		return runtime.Function{}, err
	}
	svc, err := New(cfg, pool, lc, checks, d.Logger, time.Now)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	wcfg := cfg.Wasm
	wcfg.Logger = d.Logger
	host, err := wasmhost.New(ctx, wcfg)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	svc.enableTransforms(host, wasmhost.EffectiveMaxModuleBytes(wcfg))
	return runtime.Function{
		Name:  "registry",
		HTTP:  svc.Routes(v),
		Ready: pool.Ping,
		Close: func() error { pool.Close(); return host.Close(context.Background()) },
	}, nil
}
