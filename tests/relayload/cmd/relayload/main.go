// Command relayload runs the CDC relay binary against a throwaway PostgreSQL and an
// in-process Kafka cluster, writes events through the outbox, and reports throughput and
// commit-to-consume latency as a table and as JSON.
//
//	go run ./tests/relayload/cmd/relayload -n 50000 -rate 0 -out r.json     # throughput
//	go run ./tests/relayload/cmd/relayload -n 20000 -rate 2000 -out p.json  # paced latency
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

	"github.com/myscrollr/connect/tests/relayload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "relayload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relayload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o relayload.Options
	fs.IntVar(&o.Events, "n", 50000, "events to write")
	fs.IntVar(&o.Rate, "rate", 0, "events per second; 0 writes as fast as possible")
	fs.IntVar(&o.Batch, "batch", 0, "events per transaction (default 100, or 10 when paced)")
	fs.IntVar(&o.Writers, "writers", 0, "writing connections (default 2, or 1 when paced)")
	fs.IntVar(&o.Aggregates, "aggregates", 100, "distinct aggregate ids (Kafka keys)")
	fs.StringVar(&o.WorkspaceDir, "workspace", "", "go.work root to build the relay in (default: found upwards)")
	fs.StringVar(&o.RelayBinary, "relay", "", "use this relay binary instead of building one")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
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
	rep, err := relayload.Run(ctx, o)
	if err != nil {
		return err
	}
	relayload.PrintTable(stdout, rep)
	if *out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if rep.Missing > 0 {
		return fmt.Errorf("%d events never arrived", rep.Missing)
	}
	return nil
}
