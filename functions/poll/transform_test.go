package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myscrollr/connect/shared/wasmnorm"
	"github.com/myscrollr/connect/wasmhost"
)

// quotesWasm builds wasmhost's Go example transform (the quotes stream) for wasip1.
func quotesWasm(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "quotes-go.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "github.com/myscrollr/connect/wasmhost/examples/go")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the quotes transform: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPollNormalizesThroughTheTransform: the records of a source whose current version has a
// transform are validated against the declared stream, normalized by the module, and stored
// normalized; the one the schema refuses and the one the transform refuses are rejected with
// their reasons, the others kept.
func TestPollNormalizesThroughTheTransform(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	host, err := wasmhost.New(ctx, wasmhost.Config{Logger: discard(), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := host.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	wasm := quotesWasm(t)
	m, err := host.Load(ctx, wasm) // compiled here, outside the tick's deadlines
	if err != nil {
		t.Fatal(err)
	}
	e.svc.norm = wasmnorm.Normalizer{Host: host, DB: e.svc.pool}

	quote := func(sym, price string) map[string]any {
		return map[string]any{"stream": "quotes", "data": map[string]any{"symbol": sym, "price": price, "currency": "usd", "ts": 1700000000}}
	}
	src := newSource(t, map[string]any{
		"refresh_interval_seconds": 60,
		"streams": []any{map[string]any{
			"name": "quotes", "key": []string{"symbol"},
			"schema": map[string]any{"type": "object", "required": []string{"symbol", "price", "currency", "ts"}},
		}},
	}, quote("aapl", "187.23"), quote("msft", "twelve"),
		map[string]any{"stream": "quotes", "data": map[string]any{"symbol": "goog", "price": "1"}},
		quote("nvda", "5"))
	id := e.seed(t, "quotes-source", "dev-1", src.srv.URL)
	if _, err := e.owner.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest) VALUES ($1, '1.0.0', '{}')`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.Exec(ctx, `UPDATE integrations SET current_version = '1.0.0' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.Exec(ctx, `INSERT INTO integration_transforms (integration_id, version, module, sha256, size, abi_version)
		VALUES ($1, '1.0.0', $2, $3, $4, 1)`, id, wasm, m.Info().SHA256, len(wasm)); err != nil {
		t.Fatal(err)
	}

	if res := e.tick(t); res.Polled != 1 || res.Failed != 0 {
		t.Fatalf("tick = %+v", res)
	}
	rows, err := e.owner.Query(ctx, `SELECT key || ' ' || data::text FROM records WHERE integration_id = $1 ORDER BY key`, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`aapl {"symbol": "AAPL", "currency": "USD", "price_cents": 18723, "observed_at_ms": 1700000000000}`,
		`nvda {"symbol": "NVDA", "currency": "USD", "price_cents": 500, "observed_at_ms": 1700000000000}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rows, err = e.owner.Query(ctx, `SELECT coalesce(key, '') || ' ' || field || ': ' || reason FROM record_rejections WHERE integration_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "msft /data/price: transform: must be a decimal string with at most 12 integer and 2 fraction digits" ||
		got[1] != "goog /data/currency: required" || got[2] != "goog /data/ts: required" {
		t.Fatalf("rejections:\n%s", strings.Join(got, "\n"))
	}
}
