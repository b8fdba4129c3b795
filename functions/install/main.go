package main

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/auth"
	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("install", setup)
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
	pool, err := db.OpenCurrent(ctx, cfg.DatabaseURL)
	if err != nil {
		return runtime.Function{}, err
	}
	// The token endpoint is the platform's identity server (LOGTO_ENDPOINT), not an
	// integration's URL: a plain client, bounded in time.
	hc := &http.Client{Timeout: 15 * time.Second}
	svc, err := New(cfg, pool, lc, hc, d.Logger, time.Now)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	return runtime.Function{
		Name: "install",
		HTTP: svc.Routes(v),
		// payment.succeeded (Trigger install-payment-succeeded): payment_event.go.
		Events: svc.HandleEvent,
		Ready:  pool.Ping,
		Close:  func() error { pool.Close(); return nil },
	}, nil
}
