package main

import (
	"context"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("stripe-webhook", setup)
}

func setup(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return runtime.Function{}, err
	}
	pool, err := db.OpenCurrent(ctx, cfg.DatabaseURL)
	if err != nil {
		return runtime.Function{}, err
	}
	h, err := New(cfg, pool, d.Logger, time.Now)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	// Grace periods are checked at start (an instance scaled to zero starts often: every
	// webhook wakes it) and then every SweepInterval while it runs.
	sctx, stop := context.WithCancel(ctx)
	ticker := time.NewTicker(cfg.SweepInterval)
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		h.RunSweep(sctx, ticker.C)
	}()
	return runtime.Function{
		Name:  "stripe-webhook",
		HTTP:  h.Routes(),
		Ready: pool.Ping,
		Close: func() error {
			stop()
			ticker.Stop()
			<-swept
			pool.Close()
			return nil
		},
	}, nil
}
