// Command coldstart measures the cold start and idle memory of a function binary against
// baselines, prints a table and writes the figures as JSON.
//
//	go run ./tests/coldstart/cmd/coldstart -fn github.com/myscrollr/connect/functions/catalog -pg -n 20 -out coldstart.json
//
// The baselines are hello (a minimal net/http server) and, when the function gets a
// DATABASE_URL, hellopg (the same server holding one pgx connection on which it ran one query
// before listening). -pg starts a throwaway PostgreSQL (shared/pgcluster), applies the
// migrations and passes its DATABASE_URL to the function and to hellopg; -env KEY=VALUE passes
// anything else. -also PKG[=NAME] measures further binaries in the same interleaved runs, with
// the function's environment and readiness path; the ladder in tests/coldstart/ladder breaks a
// database function's start into its parts this way (see that package).
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

	"github.com/myscrollr/connect/shared/db/migrate"
	"github.com/myscrollr/connect/shared/pgcluster"
	"github.com/myscrollr/connect/tests/coldstart"
)

type alsoFlag []coldstart.Target

func (a *alsoFlag) String() string { return fmt.Sprint(len(*a)) }
func (a *alsoFlag) Set(v string) error {
	pkg, name, _ := strings.Cut(v, "=")
	if pkg == "" {
		return fmt.Errorf("-also %q: want PKG or PKG=NAME", v)
	}
	if name == "" {
		name = filepath.Base(pkg)
	}
	*a = append(*a, coldstart.Target{Name: name, Package: pkg, ReadyPath: "/readyz"})
	return nil
}

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
	var also alsoFlag
	fn := flag.String("fn", "github.com/myscrollr/connect/tests/coldstart/testfn", "Go package of the function to measure")
	name := flag.String("name", "", "label of the function in the report (default: last element of -fn)")
	runs := flag.Int("n", 10, "execs per binary")
	idle := flag.Duration("idle", time.Second, "idle time before reading RSS")
	out := flag.String("out", "", "write the report as JSON to this path")
	pg := flag.Bool("pg", false, "start a throwaway PostgreSQL, migrate it and pass DATABASE_URL")
	flag.Var(&env, "env", "extra KEY=VALUE for the function (repeatable)")
	flag.Var(&also, "also", "further Go package to measure in the same runs, PKG or PKG=NAME (repeatable; polled at /readyz)")
	buildFlags := flag.String("buildflags", "", "extra go build flags for every binary, space-separated (e.g. \"-trimpath -ldflags=-s -tags=lambda.norpc\")")
	readyPath := flag.String("ready", "/readyz", "readiness path of the function and of -also binaries")
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
		if err := migrate.Up(ctx, url); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		env = append(env, "DATABASE_URL="+url)
	}
	label := *name
	if label == "" {
		label = filepath.Base(*fn)
	}
	plan := coldstart.Plan{
		Target:    coldstart.Target{Name: label, Package: *fn, ReadyPath: *readyPath, Env: env},
		Baselines: []coldstart.Target{{Name: "hello", Package: "github.com/myscrollr/connect/tests/coldstart/hello", ReadyPath: "/"}},
	}
	if dbURL := databaseURL(env); dbURL != "" {
		plan.Baselines = append(plan.Baselines, coldstart.Target{Name: "hellopg",
			Package: "github.com/myscrollr/connect/tests/coldstart/hellopg", ReadyPath: "/", Env: []string{"DATABASE_URL=" + dbURL}})
	}
	for _, t := range also {
		t.ReadyPath, t.Env = *readyPath, env
		plan.Others = append(plan.Others, t)
	}
	rep, err := coldstart.MeasureAll(ctx, ws, plan, coldstart.Options{Runs: *runs, Idle: *idle, BuildFlags: strings.Fields(*buildFlags)})
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

// databaseURL is the last DATABASE_URL in env, else the one in the environment, or "".
func databaseURL(env []string) string {
	url := os.Getenv("DATABASE_URL")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			url = v
		}
	}
	return url
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
