package main

import (
	"context"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("logto-webhook", setup)
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
	// Expired tombstones are deleted at start (an instance scaled to zero starts often) and then
	// every CleanupInterval while it runs.
	cctx, stop := context.WithCancel(ctx)
	ticker := time.NewTicker(cfg.CleanupInterval)
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		h.RunCleanup(cctx, ticker.C, nil)
	}()
	return runtime.Function{
		Name:  "logto-webhook",
		HTTP:  h.Routes(),
		Ready: pool.Ping,
		Close: func() error {
			stop()
			ticker.Stop()
			<-cleaned
			pool.Close()
			return nil
		},
	}, nil
}
