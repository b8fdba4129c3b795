// Command coldstart measures the cold start and idle memory of a function binary against a
// minimal net/http server, prints a table and writes the figures as JSON.
//
//	go run ./tests/coldstart/cmd/coldstart -fn github.com/myscrollr/connect/functions/catalog -pg -n 20 -out coldstart.json
//
// -pg starts a throwaway PostgreSQL (shared/pgcluster), applies the migrations and passes its
// DATABASE_URL to the function; -env KEY=VALUE passes anything else.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/myscrollr/connect/shared/db"
	"github.com/myscrollr/connect/shared/pgcluster"
	"github.com/myscrollr/connect/tests/coldstart"
)

type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, ",") }
func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("-env %q: want KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run() error {
	var env envFlag
	fn := flag.String("fn", "github.com/myscrollr/connect/tests/coldstart/testfn", "Go package of the function to measure")
	name := flag.String("name", "", "label of the function in the report (default: last element of -fn)")
	runs := flag.Int("n", 10, "execs per binary")
	idle := flag.Duration("idle", time.Second, "idle time before reading RSS")
	out := flag.String("out", "", "write the report as JSON to this path")
	pg := flag.Bool("pg", false, "start a throwaway PostgreSQL, migrate it and pass DATABASE_URL")
	flag.Var(&env, "env", "extra KEY=VALUE for the function (repeatable)")
	flag.Parse()
	if *runs < 1 {
		return errors.New("-n: want at least 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ws, err := workspaceDir()
	if err != nil {
		return err
	}
	if *pg {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{})
		if err != nil {
			return fmt.Errorf("start PostgreSQL: %w", err)
		}
		defer cluster.Stop()
		url := cluster.URL("postgres")
		if err := db.Migrate(ctx, url); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		env = append(env, "DATABASE_URL="+url)
	}
	label := *name
	if label == "" {
		label = filepath.Base(*fn)
	}
	target := coldstart.Target{Name: label, Package: *fn, ReadyPath: "/readyz", Env: env}
	baseline := coldstart.Target{Name: "hello", Package: "github.com/myscrollr/connect/tests/coldstart/hello", ReadyPath: "/"}
	rep, err := coldstart.Measure(ctx, ws, target, baseline, coldstart.Options{Runs: *runs, Idle: *idle})
	if err != nil {
		return err
	}
	fmt.Print(rep.Table())
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

// workspaceDir is the directory of the go.work file, where go build resolves every module.
func workspaceDir() (string, error) {
	b, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	p := strings.TrimSpace(string(b))
	if p == "" || p == "off" {
		return "", errors.New("run inside the workspace (no go.work found)")
	}
	return filepath.Dir(p), nil
}
