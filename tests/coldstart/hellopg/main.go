// Command hellopg is the cold-start baseline for functions that use the database: the smallest
// net/http server that, before it listens, opens one pgx connection to DATABASE_URL and runs
// one query on it (SELECT 1, in pgx's default mode: prepare and execute), then answers 200 on
// /. It holds the connection until it exits. So its cold start is process start, package
// init, the PostgreSQL connection (including the server starting a backend) and one query:
// what a function cannot avoid paying before it can honestly say it is ready.
//
// It reads PORT (default 8080) and LISTEN_HOST like the function runtime does.
package main

import (
	"context"
	"net"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fail(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		fail(err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello\n")) })
	err = http.ListenAndServe(net.JoinHostPort(os.Getenv("LISTEN_HOST"), port), nil)
	_ = conn.Close(ctx)
	fail(err)
}

func fail(err error) {
	msg := "hellopg: SELECT 1 did not return 1"
	if err != nil {
		msg = "hellopg: " + err.Error()
	}
	os.Stderr.WriteString(msg + "\n")
	os.Exit(1)
}
