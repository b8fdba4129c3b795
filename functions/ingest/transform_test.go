package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/shared/records"
	"github.com/myscrollr/connect/shared/wasmnorm"
	"github.com/myscrollr/connect/wasmhost"
)

const quotesManifest = `{"data_source": {"streams": [
	{"name": "quotes", "key": ["symbol"], "schema": {"type": "object", "required": ["symbol", "price", "currency", "ts"],
		"properties": {"symbol": {"type": "string"}, "price": {"type": "string"}, "currency": {"type": "string"}, "ts": {"type": "integer"}}}}]}}`

var asQuotes struct {
	once sync.Once
	wasm []byte
	err  error
}

// asQuotesWasm builds wasmhost's AssemblyScript quotes transform with the compiler pinned in
// its package-lock.json; it skips only when npm is not installed.
func asQuotesWasm(t testing.TB) []byte {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed (the AssemblyScript transform needs node and npm)")
	}
	asQuotes.once.Do(func() {
		dir := filepath.Join("..", "..", "wasmhost", "examples", "assemblyscript")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "asc")); err != nil {
			cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				asQuotes.err = &buildErr{"npm ci: " + err.Error() + "\n" + string(out)}
				return
			}
		}
		out := filepath.Join(os.TempDir(), "ingest-quotes-as-"+strconv.Itoa(os.Getpid())+".wasm")
		defer os.Remove(out)
		cmd := exec.Command("npx", "asc", "assembly/index.ts", "--outFile", out, "--optimize", "--runtime", "stub", "--noAssert", "--use", "abort=")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			asQuotes.err = &buildErr{"asc: " + err.Error() + "\n" + string(b)}
			return
		}
		asQuotes.wasm, asQuotes.err = os.ReadFile(out)
	})
	if asQuotes.err != nil {
		t.Fatal(asQuotes.err)
	}
	return asQuotes.wasm
}

type buildErr struct{ s string }

func (e *buildErr) Error() string { return e.s }

// withTransform makes b's service normalize through a wasmhost host (isolation iso) and gives
// the push source id the module wasm as its current version's transform.
func (b bundle) withTransform(t testing.TB, id string, wasm []byte, iso string) {
	t.Helper()
	ctx := context.Background()
	host, err := wasmhost.New(ctx, wasmhost.Config{Logger: discard(), CacheDir: t.TempDir(), Isolation: iso})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := host.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	m, err := host.Load(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	b.svc.norm = wasmnorm.Normalizer{Host: host, DB: b.pool}
	if _, err := b.pool.Exec(ctx, `UPDATE integrations SET current_version = '1.0.0' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO integration_transforms (integration_id, version, module, sha256, size, abi_version)
		VALUES ($1, '1.0.0', $2, $3, $4, 1)`, id, wasm, m.Info().SHA256, len(wasm)); err != nil {
		t.Fatal(err)
	}
}

func quote(sym, price string, ts int) string {
	return `{"symbol":"` + sym + `","price":"` + price + `","currency":"usd","ts":` + strconv.Itoa(ts) + `,"volume":7}`
}

// TestIngestNormalizesThroughTheTransform: pushed records are validated against their stream,
// normalized by the push source's WASM transform in one batch, and stored normalized; the one
// the schema refuses and the one the transform refuses are refused with their reasons (207),
// the others stored.
func TestIngestNormalizesThroughTheTransform(t *testing.T) {
	wasm := asQuotesWasm(t)
	for _, iso := range []string{wasmhost.IsolationProcess, wasmhost.IsolationInProcess} {
		t.Run(iso, func(t *testing.T) {
			b := setupIngest(t, Config{})
			id := b.pushSource(t, "quotes-push", "push-quotes", quotesManifest)
			b.withTransform(t, id, wasm, iso)
			tok := b.token(t, "push-quotes", time.Hour, "data:write")
			code, _, out := b.push(t, tok, batchCT, batch(t,
				ev("q1", "quotes", quote("aapl", "187.23", 1700000000)),
				ev("q2", "quotes", quote("msft", "twelve", 1700000000)),
				ev("q3", "quotes", `{"symbol":"goog","price":"1"}`),
				ev("q4", "quotes", quote("nvda", "5", 1700000001))))
			if code != 207 {
				t.Fatalf("%d %s", code, out)
			}
			res := results(t, out)
			if res.Stored != 2 || res.Refused != 2 {
				t.Fatalf("%+v", res)
			}
			if p := res.Results[1].Problems; len(p) != 1 || p[0].Field != "/data/price" || !strings.HasPrefix(p[0].Reason, "transform: must be a decimal string") {
				t.Fatalf("the record the transform refuses: %+v", res.Results[1])
			}
			if p := res.Results[2].Problems; len(p) == 0 || strings.HasPrefix(p[0].Reason, "transform:") {
				t.Fatalf("the record the schema refuses: %+v", res.Results[2])
			}
			rows, err := b.pool.Query(context.Background(), `SELECT key || ' ' || data::text FROM records WHERE integration_id = $1 ORDER BY key`, id)
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
				`aapl {"symbol": "AAPL", "volume": 7, "currency": "USD", "price_cents": 18723, "observed_at_ms": 1700000000000}`,
				`nvda {"symbol": "NVDA", "volume": 7, "currency": "USD", "price_cents": 500, "observed_at_ms": 1700000001000}`,
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("stored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n := b.count(t, `SELECT count(*) FROM record_rejections WHERE integration_id = $1 AND key = 'msft'
				AND field = '/data/price' AND reason LIKE 'transform: %' AND sample LIKE '%twelve%'`, id); n != 1 {
				t.Fatalf("%d rejections of the transform's refusal, want 1", n)
			}
		})
	}
}

// BenchmarkIngestBatch500Transform is BenchmarkIngestBatch500 with the AssemblyScript quotes
// transform on (records of about 150 bytes, every one normalized), in each isolation mode:
// what a push source with a transform costs end to end. records/s is the figure; go-cpu-µs is
// this process's CPU only (not the worker's in process isolation, nor PostgreSQL's). "none"
// pushes the same records without a transform (records.Identity): the baseline.
func BenchmarkIngestBatch500Transform(b *testing.B) {
	wasm := asQuotesWasm(b)
	for _, iso := range []string{"none", wasmhost.IsolationProcess, wasmhost.IsolationInProcess} {
		b.Run(iso, func(b *testing.B) {
			bd := setupIngest(b, Config{})
			id := bd.pushSource(b, "quotes-push", "push-quotes", quotesManifest)
			if iso != "none" {
				bd.withTransform(b, id, wasm, iso)
			}
			tok := bd.token(b, "push-quotes", time.Hour, "data:write")
			bodies := make([][]byte, b.N)
			for j := range b.N {
				list := make([]map[string]any, 500)
				for i := range list {
					k := j*500 + i
					list[i] = ev("e"+strconv.Itoa(k), "quotes", `{"symbol":"s`+strconv.Itoa(k)+`","price":"`+strconv.Itoa(100+i)+`.25","currency":"usd","ts":`+strconv.Itoa(1700000000+k)+`,"volume":`+strconv.Itoa(k)+`,"exchange":"nasdaq","note":"a note"}`)
				}
				bodies[j] = batch(b, list...)
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime(b)
			for n := range b.N {
				code, _, out := bd.push(b, tok, batchCT, bodies[n])
				if code != 200 {
					b.Fatalf("%d %s", code, out)
				}
			}
			report(b, start, cpu0)
		})
	}
}

// TestTransformOfUnpublishedPushSource: ingest checks an unpublished push source's records
// against its latest version (coalesce(current_version, latest_version)); the transform looked
// up for it is that version's too, and once a version is published a newer draft's transform
// is not used.
func TestTransformOfUnpublishedPushSource(t *testing.T) {
	ctx := context.Background()
	b := setupIngest(t, Config{})
	id := b.pushSource(t, "draft-push", "push-draft", pricesManifest)
	sum1, sum2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, v := range [][2]string{{"1.0.0", sum1}, {"2.0.0", sum2}} {
		if v[0] == "2.0.0" {
			if _, err := b.pool.Exec(ctx, `INSERT INTO integration_versions (integration_id, version, manifest) VALUES ($1, '2.0.0', $2)`, id, pricesManifest); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.pool.Exec(ctx, `INSERT INTO integration_transforms (integration_id, version, module, sha256, size, abi_version)
			VALUES ($1, $2, '\x0061736d01000000'::bytea, $3, 8, 1)`, id, v[0], v[1]); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := records.CurrentTransform(ctx, b.pool, id); err != nil || got != sum1 {
		t.Fatalf("unpublished, latest 1.0.0: %q %v, want %q", got, err, sum1)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE integrations SET latest_version = '2.0.0' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if got, err := records.CurrentTransform(ctx, b.pool, id); err != nil || got != sum2 {
		t.Fatalf("unpublished, latest 2.0.0: %q %v, want %q", got, err, sum2)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE integrations SET current_version = '1.0.0' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if got, err := records.CurrentTransform(ctx, b.pool, id); err != nil || got != sum1 {
		t.Fatalf("published 1.0.0, draft 2.0.0: %q %v, want %q", got, err, sum1)
	}
}
