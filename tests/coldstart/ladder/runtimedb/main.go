// Command runtimedb is a cold-start ladder rung (see package ladder): the runtime (runtime.Main)
// around db.OpenCurrent, with the pool's Ping as readiness and no routes: the catalog without
// its own package.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("runtimedb", func(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
		url := os.Getenv("DATABASE_URL")
		if url == "" {
			return runtime.Function{}, errors.New("runtimedb: DATABASE_URL is required")
		}
		pool, err := db.OpenCurrent(ctx, url)
		if err != nil {
			return runtime.Function{}, err
		}
		return runtime.Function{
			Name:  "runtimedb",
			Ready: pool.Ping,
			Close: func() error { pool.Close(); return nil },
		}, nil
	})
}
