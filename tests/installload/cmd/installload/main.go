// Command installload makes installs through the whole local runtime (consent page, callback,
// outbox, relay, Kafka, notify, signed delivery) and reports installs/s and commit-to-delivery
// latency as a table and as JSON (package installload).
//
//	go run ./tests/installload/cmd/installload -n 2000 -out t.json               # throughput
//	go run ./tests/installload/cmd/installload -n 2000 -rate 200 -out p.json     # paced latency
//	go run ./tests/installload/cmd/installload -n 1000 -kill                     # with SIGKILLs
//	go run ./tests/installload/cmd/installload -n 4000 -rate 200 -direct         # commit -> delivery alone
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

	"github.com/myscrollr/connect/tests/installload"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "installload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("installload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o installload.Options
	fs.IntVar(&o.Installs, "n", 2000, "installs (one user each)")
	fs.IntVar(&o.Rate, "rate", 0, "installs started per second; 0 starts them as fast as -c users allow")
	fs.IntVar(&o.Concurrency, "c", 32, "users installing at once")
	fs.BoolVar(&o.Direct, "direct", false, "commit installs as the consent callback does, skipping the user's side (measures commit to delivery alone)")
	fs.BoolVar(&o.Kill, "kill", false, "SIGKILL notify and the relay in turn while installs run")
	fs.DurationVar(&o.KillEvery, "kill-every", 2*time.Second, "time between SIGKILLs")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "bound on the whole run")
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
	rep, err := installload.Run(ctx, o)
	installload.PrintTable(stdout, rep)
	if *out != "" {
		b, jerr := json.MarshalIndent(rep, "", "  ")
		if jerr != nil {
			return jerr
		}
		if werr := os.WriteFile(*out, append(b, '\n'), 0o644); werr != nil {
			return werr
		}
	}
	if err != nil {
		return err
	}
	if rep.Missing > 0 {
		return fmt.Errorf("%d installs never reached the integration", rep.Missing)
	}
	return nil
}
