// Command dbcheck is a cold-start ladder rung (see package ladder): net/http with the pool that
// db.OpenCurrent returns (schema checked, never migrated) before the server listens;
// /readyz pings the pool.
package main

import (
	"context"
	"net"
	"net/http"
	"os"

	"github.com/myscrollr/connect/shared/db"
)

func main() {
	pool, err := db.OpenCurrent(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		os.Stderr.WriteString("dbcheck: " + err.Error() + "\n")
		os.Exit(1)
	}
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := pool.Ping(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	err = http.ListenAndServe(net.JoinHostPort(os.Getenv("LISTEN_HOST"), os.Getenv("PORT")), nil)
	os.Stderr.WriteString("dbcheck: " + err.Error() + "\n")
	os.Exit(1)
}
