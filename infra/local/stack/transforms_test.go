package stack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/myscrollr/connect/infra/local/demo"
	"github.com/myscrollr/connect/shared/pgtest"
	"github.com/myscrollr/connect/shared/records"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The demo's transforms are built for wasip1, validated as the registry validates an upload
// and stored for the listing's version: crypto-ticker's current version then has the quotes
// transform (what poll and ingest look up), the other listings none. A second start against
// the same database replaces the row in place; a module wasmhost refuses fails with the
// listing and the reason and leaves the stored one as it was.
func TestDemoTransformsStored(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the quotes transform for wasip1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	d, err := demo.Start(log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	s := &Stack{log: log, workDir: t.TempDir(), DatabaseURL: pgtest.URL(t), demo: d}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := d.Seed(ctx, conn); err != nil {
		t.Fatal(err)
	}

	pkgs := demoTransformPackages()
	if len(pkgs) != 1 || pkgs[0] != demo.QuotesTransform {
		t.Fatalf("demo transform packages %v, want only %s", pkgs, demo.QuotesTransform)
	}
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := buildTransforms(ctx, root, s.transformDir(), pkgs, log); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(transformFile(s.transformDir(), demo.QuotesTransform))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	wantSum := hex.EncodeToString(sum[:])

	stored := func() map[string]string {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT i.name, t.version || ' ' || t.sha256 || ' ' || t.size || ' ' || t.abi_version ||
				' ' || (t.module = $1)::text
			FROM integration_transforms t JOIN integrations i ON i.id = t.integration_id`, wasm)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
			var v [2]string
			return v, r.Scan(&v[0], &v[1])
		})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, v := range got {
			out[v[0]] = v[1]
		}
		return out
	}
	want := demo.Version + " " + wantSum + " " + strconv.Itoa(len(wasm)) + " 1 true"
	for round := range 2 {
		if err := s.storeDemoTransforms(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got := stored(); len(got) != 1 || got["crypto-ticker"] != want {
			t.Fatalf("round %d: stored transforms %v, want crypto-ticker: %s", round, got, want)
		}
	}
	var tickerID string
	if err := conn.QueryRow(ctx, `SELECT id FROM integrations WHERE name = 'crypto-ticker'`).Scan(&tickerID); err != nil {
		t.Fatal(err)
	}
	if cur, err := records.CurrentTransform(ctx, conn, tickerID); err != nil || cur != wantSum {
		t.Fatalf("crypto-ticker's current transform = %q, %v; want %s", cur, err, wantSum)
	}

	// Not WebAssembly: refused with the reason, and the stored module stays.
	if err := os.WriteFile(transformFile(s.transformDir(), demo.QuotesTransform), []byte("not a module at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = s.storeDemoTransforms(ctx)
	if err == nil || !strings.Contains(err.Error(), "crypto-ticker") || !strings.Contains(err.Error(), "not a WebAssembly module") {
		t.Fatalf("a broken module: %v; want crypto-ticker's refusal with its reason", err)
	}
	if got := stored(); len(got) != 1 || got["crypto-ticker"] != want {
		t.Fatalf("after a refused module: %v, want crypto-ticker: %s", got, want)
	}
}

// A transform that does not build fails with the package and the compiler's words.
func TestBuildTransformsFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	const pkg = "github.com/myscrollr/connect/wasmhost/examples/nosuchtransform"
	err = buildTransforms(context.Background(), root, t.TempDir(), []string{pkg}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), pkg) || !strings.Contains(err.Error(), "GOOS=wasip1") {
		t.Fatalf("building a missing package: %v", err)
	}
}
