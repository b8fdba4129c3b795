package wasmhost

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// built holds the example and test transforms, built once per test binary.
var built struct {
	once                     sync.Once
	goQuotes, hostile, asQts []byte
	goJSON                   []byte
	goErr, asErr             error
}

// buildGo builds the Go package at pkg (relative to this module) as a wasip1 reactor.
func buildGo(dir, pkg, name string) ([]byte, error) {
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{"go build " + pkg, err, b}
	}
	return os.ReadFile(out)
}

type buildError struct {
	what string
	err  error
	out  []byte
}

func (e *buildError) Error() string { return e.what + ": " + e.err.Error() + "\n" + string(e.out) }

// buildAS builds the AssemblyScript example with the compiler pinned in its package-lock.json.
func buildAS() ([]byte, error) {
	dir := filepath.Join("examples", "assemblyscript")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "asc")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, &buildError{"npm ci", err, b}
		}
	}
	cmd := exec.Command("npm", "run", "build")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{"npm run build", err, b}
	}
	return os.ReadFile(filepath.Join(dir, "build", "quotes.wasm"))
}

func buildAll() {
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "wasmhost-test-")
		if err != nil {
			built.goErr = err
			return
		}
		built.goQuotes, built.goErr = buildGo(dir, "./examples/go", "quotes-go.wasm")
		if built.goErr == nil {
			built.hostile, built.goErr = buildGo(dir, "./testdata/hostile", "hostile.wasm")
		}
		if built.goErr == nil {
			built.goJSON, built.goErr = buildGo(dir, "./testdata/gojson", "gojson.wasm")
		}
		if _, err := exec.LookPath("npm"); err != nil {
			built.asErr = &buildError{what: "npm is not installed (the AssemblyScript example needs node and npm: apt-get install nodejs npm)", err: err}
		} else {
			built.asQts, built.asErr = buildAS()
		}
		_ = os.RemoveAll(dir)
	})
}

// goModules returns the Go quotes example and the hostile test module.
func goModules(tb testing.TB) (quotes, hostile []byte) {
	tb.Helper()
	buildAll()
	if built.goErr != nil {
		tb.Fatal(built.goErr)
	}
	return built.goQuotes, built.hostile
}

// goJSONModule returns the quotes transform decoded with encoding/json (testdata/gojson).
func goJSONModule(tb testing.TB) []byte {
	tb.Helper()
	buildAll()
	if built.goErr != nil {
		tb.Fatal(built.goErr)
	}
	return built.goJSON
}

// asModule returns the AssemblyScript quotes example; it skips only when npm is missing.
func asModule(tb testing.TB) []byte {
	tb.Helper()
	buildAll()
	if built.asErr != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			tb.Skip(built.asErr)
		}
		tb.Fatal(built.asErr)
	}
	return built.asQts
}

// isolations are the modes every behaviour test runs in.
var isolations = []string{IsolationProcess, IsolationInProcess}

// newHost starts a host with cfg (small limits unless set) closed at the end of the test.
func newHost(tb testing.TB, cfg Config) *Host {
	tb.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = sharedCacheDir(tb)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return h
}

var cacheDir struct {
	once sync.Once
	dir  string
	err  error
}

// sharedCacheDir is one compilation cache for the whole test binary, so each module is
// compiled once however many hosts the tests start.
func sharedCacheDir(tb testing.TB) string {
	cacheDir.once.Do(func() { cacheDir.dir, cacheDir.err = os.MkdirTemp("", "wasmhost-cache-test-") })
	if cacheDir.err != nil {
		tb.Fatal(cacheDir.err)
	}
	return cacheDir.dir
}

func TestMain(m *testing.M) {
	MaybeWorker() // the test binary is the workers' binary too
	code := m.Run()
	if cacheDir.dir != "" {
		_ = os.RemoveAll(cacheDir.dir)
	}
	os.Exit(code)
}

// wasmBuilder writes minimal core modules by hand, for what no compiler would emit.
type wasmFunc struct {
	params, results []byte // value types: 0x7f i32, 0x7e i64
}

type wasmImport struct {
	module, name string
	fn           wasmFunc
}

func leb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func name(s string) []byte { return append(leb(uint32(len(s))), s...) }

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, leb(uint32(len(body)))...), body...)
}

func vec(items ...[]byte) []byte {
	out := leb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

// handModule is a module importing imports and, if memory, exporting a one-page "memory".
func handModule(imports []wasmImport, memory bool) []byte {
	var buf bytes.Buffer
	buf.Write([]byte("\x00asm\x01\x00\x00\x00"))
	var types, imps [][]byte
	for i, im := range imports {
		types = append(types, append(append([]byte{0x60}, vec(bytesOf(im.fn.params)...)...), vec(bytesOf(im.fn.results)...)...))
		imps = append(imps, append(append(name(im.module), name(im.name)...), append([]byte{0x00}, leb(uint32(i))...)...))
	}
	if len(types) > 0 {
		buf.Write(section(1, vec(types...)))
		buf.Write(section(2, vec(imps...)))
	}
	if memory {
		buf.Write(section(5, vec([]byte{0x00, 0x01})))
		buf.Write(section(7, vec(append(name("memory"), 0x02, 0x00))))
	}
	return buf.Bytes()
}

func bytesOf(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}
