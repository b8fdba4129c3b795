// Command pool is a cold-start ladder rung (see package ladder): net/http with a pgxpool that
// has answered one Ping before the server listens; /readyz pings the pool.
package main

import (
	"context"
	"net"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		os.Stderr.WriteString("pool: " + err.Error() + "\n")
		os.Exit(1)
	}
	serve(pool.Ping)
}

func serve(ready func(context.Context) error) {
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	err := http.ListenAndServe(net.JoinHostPort(os.Getenv("LISTEN_HOST"), os.Getenv("PORT")), nil)
	os.Stderr.WriteString("pool: " + err.Error() + "\n")
	os.Exit(1)
}
