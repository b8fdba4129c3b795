// Command catalogload seeds a throwaway PostgreSQL with published listings and reviews, runs
// the catalog binary over it, and reports latency at a fixed rate, the maximum rate (beside
// the same SQL run directly through pgx) and how overload is answered, as a table and as JSON.
//
//	go run ./tests/catalogload/cmd/catalogload -out catalogload.json          # the full run
//	go run ./tests/catalogload/cmd/catalogload -listings 2000 -reviews 20000 -d 2s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/myscrollr/connect/tests/catalogload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "catalogload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalogload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o catalogload.Options
	fs.IntVar(&o.Listings, "listings", 100_000, "published listings to seed")
	fs.IntVar(&o.Reviews, "reviews", 1_000_000, "reviews to seed (spread evenly)")
	fs.IntVar(&o.Rate, "rate", 500, "paced requests per second")
	fs.DurationVar(&o.Duration, "d", 10*time.Second, "length of each paced and maximum-rate run")
	fs.IntVar(&o.Concurrency, "c", 16, "closed-loop workers of the maximum-rate runs")
	fs.IntVar(&o.OverloadRate, "overload", 4000, "requests per second of the overload run (-1 skips it)")
	fs.DurationVar(&o.OverloadDuration, "overload-d", 3*time.Second, "length of the overload run")
	fs.IntVar(&o.MaxConns, "conns", 8, "DB_MAX_CONNS of the catalog, and the direct pool's size")
	fs.StringVar(&o.WorkspaceDir, "workspace", "", "go.work root to build the catalog in (default: found upwards)")
	fs.StringVar(&o.CatalogBinary, "catalog", "", "use this catalog binary instead of building one")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.Explain, "explain", false, "print the query plans of both scenarios")
	out := fs.String("out", "", "write the report as JSON to this file")
	verbose := fs.Bool("v", false, "log progress to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *verbose {
		o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	rep, err := catalogload.Run(ctx, o)
	if err != nil {
		return err
	}
	catalogload.PrintTable(stdout, rep)
	for name, plan := range rep.Plans {
		fmt.Fprintf(stdout, "\n%s:\n%s\n", name, plan)
	}
	if *out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
