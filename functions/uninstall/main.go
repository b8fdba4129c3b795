package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/logto"
	"github.com/myscrollr/connect/shared/runtime"
)

func main() {
	runtime.Main("uninstall", setup)
}

func setup(ctx context.Context, d runtime.Deps) (runtime.Function, error) {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return runtime.Function{}, errors.New("uninstall: DATABASE_URL is required")
	}
	lc, err := logto.New(logto.Config{
		Endpoint:  os.Getenv("LOGTO_ENDPOINT"),
		AppID:     os.Getenv("LOGTO_M2M_APP_ID"),
		AppSecret: os.Getenv("LOGTO_M2M_APP_SECRET"),
		Resource:  os.Getenv("LOGTO_MANAGEMENT_RESOURCE"), // empty: logto.DefaultResource
		Logger:    d.Logger,
	})
	if err != nil {
		return runtime.Function{}, err
	}
	pool, err := db.OpenMigrated(ctx, url, d.Logger)
	if err != nil {
		return runtime.Function{}, err
	}
	svc, err := New(pool, lc, d.Logger, time.Now)
	if err != nil {
		pool.Close()
		return runtime.Function{}, err
	}
	return runtime.Function{
		Name:   "uninstall",
		Events: svc.HandleEvent,
		Ready:  pool.Ping,
		Close:  func() error { pool.Close(); return nil },
	}, nil
}
