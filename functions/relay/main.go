package main

import (
	"context"
	"flag"
	"os"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	setupOnly := flag.Bool("setup", false, "create the replication slot when it is missing, then exit (the Job run before the relay rolls out)")
	flag.Parse()
	if *setupOnly {
		os.Exit(runSetup(ConfigFromEnv(os.Getenv)))
	}
	runtime.Main("relay", setup)
}

// setup starts the relay in the background for the life of ctx (the process's signal
// context); Close waits for it to drain.
func setup(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return runtime.Function{}, err
	}
	// The publication is on the outbox table: make sure the schema is current first.
	pool, err := db.OpenCurrent(ctx, cfg.DatabaseURL)
	if err != nil {
		return runtime.Function{}, err
	}
	pool.Close()
	r, err := New(cfg, Deps{Logger: d.Logger, Registry: d.Registry})
	if err != nil {
		return runtime.Function{}, err
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return runtime.Function{
		Name:  "relay",
		Ready: r.Ready,
		Close: func() error { return <-done },
	}, nil
}
