package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/myscrollr/connect/wasmhost"
)

// testWasmHost is a transform host for one test, closed with it.
func testWasmHost(t *testing.T) (*wasmhost.Host, int) {
	t.Helper()
	h, err := wasmhost.New(context.Background(), wasmhost.Config{Logger: discard(), CacheDir: wasmCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return h, wasmhost.DefaultMaxModuleBytes
}

var wasmDir struct {
	once         sync.Once
	dir          string
	quotes       []byte
	cacheErr, er error
}

func wasmCache(t *testing.T) string {
	wasmDir.once.Do(func() {
		wasmDir.dir, wasmDir.cacheErr = os.MkdirTemp("", "registry-wasm-")
	})
	if wasmDir.cacheErr != nil {
		t.Fatal(wasmDir.cacheErr)
	}
	return wasmDir.dir
}

var quotesOnce sync.Once

// quotesModule builds wasmhost's Go example transform (the quotes stream) for wasip1.
func quotesModule(t *testing.T) []byte {
	t.Helper()
	dir := wasmCache(t)
	quotesOnce.Do(func() {
		out := filepath.Join(dir, "quotes-go.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "github.com/myscrollr/connect/wasmhost/examples/go")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			wasmDir.er = &buildErr{string(b) + err.Error()}
			return
		}
		if wasmDir.quotes, wasmDir.er = os.ReadFile(out); wasmDir.er != nil {
			return
		}
		// Compile it into the shared compilation cache now, outside any request's timeout
		// (a cold compile of a Go module takes seconds under -race).
		h, err := wasmhost.New(context.Background(), wasmhost.Config{Logger: discard(), CacheDir: dir})
		if err != nil {
			wasmDir.er = err
			return
		}
		defer h.Close(context.Background())
		_, wasmDir.er = h.Load(context.Background(), wasmDir.quotes)
	})
	if wasmDir.er != nil {
		t.Fatal(wasmDir.er)
	}
	return wasmDir.quotes
}

type buildErr struct{ s string }

func (e *buildErr) Error() string { return e.s }

func (b bundle) putWasm(t *testing.T, path, token, contentType string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, b.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return reply{Status: resp.StatusCode, Body: buf.Bytes()}
}

// pathOpenModule imports WASI's path_open: a transform reaching for the file system.
var pathOpenModule = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" + // type 0: () -> ()
	"\x02\x24\x01\x16wasi_snapshot_preview1\x09path_open\x00\x00")

func TestTransformUploadAndTry(t *testing.T) {
	b := start(t)
	b.register(t, "dev_1", "quotes-feed", nil)
	tok := b.dev(t, "dev_1")
	path := "/v1/developer/integrations/quotes-feed/versions/1.0.0/transform"

	// Refused before anything is stored, each with its reason.
	for _, tc := range []struct {
		name, ct, field, reason string
		body                    []byte
	}{
		{"not wasm", wasmhost.WasmMediaType, "body", "not a WebAssembly module", []byte("hello")},
		{"file system import", wasmhost.WasmMediaType, "body", "wasi_snapshot_preview1.path_open (no file system)", pathOpenModule},
		{"wrong content type", "application/octet-stream", "Content-Type", "must be application/wasm", quotesModule(t)},
	} {
		r := b.putWasm(t, path, tok, tc.ct, tc.body)
		p := r.problem(t)
		if r.Status != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Reason, tc.reason) {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM integration_transforms`); n != 0 {
		t.Fatalf("%d transforms stored after refusals", n)
	}
	// Another developer's integration, or a version that does not exist: 404.
	if r := b.putWasm(t, path, b.dev(t, "dev_2"), wasmhost.WasmMediaType, quotesModule(t)); r.Status != http.StatusNotFound {
		t.Fatalf("another developer: %d %s", r.Status, r.Body)
	}
	if r := b.putWasm(t, strings.Replace(path, "1.0.0", "9.9.9", 1), tok, wasmhost.WasmMediaType, quotesModule(t)); r.Status != http.StatusNotFound {
		t.Fatalf("no such version: %d %s", r.Status, r.Body)
	}
	// A dry run before any upload: 404 naming what to do.
	try := map[string]any{"records": []map[string]any{
		{"stream": "quotes", "data": map[string]any{"symbol": "aapl", "price": "187.23", "currency": "usd", "ts": 1700000000}},
		{"stream": "quotes", "data": map[string]any{"symbol": "msft", "price": "twelve", "currency": "usd", "ts": 1700000000}},
		{"stream": "Quotes!", "data": map[string]any{}},
		{"stream": "quotes", "data": map[string]any{"symbol": "goog", "price": "1", "currency": "eur", "ts": 5}},
	}}
	if r := b.do(t, "POST", path+"/try", tok, try); r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), "PUT one first") {
		t.Fatalf("try without a transform: %d %s", r.Status, r.Body)
	}

	wasm := quotesModule(t)
	r := b.putWasm(t, path, tok, wasmhost.WasmMediaType, wasm)
	if r.Status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var row transformRow
	r.decode(t, &row)
	sum := sha256.Sum256(wasm)
	if row.SHA256 != hex.EncodeToString(sum[:]) || row.Size != len(wasm) || row.ABIVersion != 1 || row.Version != "1.0.0" {
		t.Fatalf("stored %+v", row)
	}
	if n := b.count(t, `SELECT count(*) FROM integration_transforms WHERE sha256 = $1 AND octet_length(module) = $2`, row.SHA256, len(wasm)); n != 1 {
		t.Fatalf("%d rows hold the module", n)
	}

	r = b.do(t, "POST", path+"/try", tok, try)
	if r.Status != http.StatusOK {
		t.Fatalf("try: %d %s", r.Status, r.Body)
	}
	var out struct {
		Results []tryResult `json:"results"`
	}
	r.decode(t, &out)
	if len(out.Results) != 4 {
		t.Fatalf("%s", r.Body)
	}
	if string(out.Results[0].Data) != `{"symbol":"AAPL","price_cents":18723,"currency":"USD","observed_at_ms":1700000000000}` ||
		string(out.Results[3].Data) != `{"symbol":"GOOG","price_cents":100,"currency":"EUR","observed_at_ms":5000}` {
		t.Fatalf("normalized: %s", r.Body)
	}
	if p := out.Results[1].Problems; len(p) != 1 || p[0].Field != "/data/price" || !strings.Contains(p[0].Reason, "decimal string") {
		t.Fatalf("the bad record: %s", r.Body)
	}
	if p := out.Results[2].Problems; len(p) != 1 || p[0].Field != "/stream" {
		t.Fatalf("the bad stream: %s", r.Body)
	}
	// A dry run's body is bounded and checked.
	if r := b.do(t, "POST", path+"/try", tok, map[string]any{"records": []any{}}); r.Status != http.StatusBadRequest || r.problem(t).Errors[0].Field != "/records" {
		t.Fatalf("no records: %d %s", r.Status, r.Body)
	}
}
