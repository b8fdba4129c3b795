package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myscrollr/connect/wasmhost/abi"
	"github.com/myscrollr/connect/wasmhost/examples/quotes"
)

// sample is the quotes stream every transform normalizes: n records of about 150 bytes,
// every seventh one bad in a different way.
func sample(n int) []abi.Input {
	bad := []string{
		`{"symbol":"msft","price":"12.345","currency":"usd","ts":1700000000}`,
		`{"symbol":"","price":"1.00","currency":"usd","ts":1700000000}`,
		`{"symbol":"goog","price":"1.00","currency":"dollars","ts":1700000000}`,
		`{"symbol":"goog","price":"1.00","currency":"usd","ts":-4}`,
	}
	in := make([]abi.Input, n)
	for i := range in {
		var d string
		if i%7 == 6 {
			d = bad[(i/7)%len(bad)]
		} else {
			d = fmt.Sprintf(`{"symbol":"sym%d","price":"%d.%02d","currency":"usd","ts":%d,"volume":%d,"exchange":"nasdaq","note":"a note to reach 150 bytes"}`,
				i%1000, 100+i%900, i%100, 1700000000+i, 1000*i)
		}
		in[i] = abi.Input{Stream: quotes.Stream, Data: []byte(d)}
	}
	return in
}

// native runs the same transform natively: what every guest must answer.
func native(in []abi.Input) []abi.Result {
	out := make([]abi.Result, len(in))
	for i, r := range in {
		data, p := quotes.Append(nil, r.Stream, r.Data)
		if p != nil {
			out[i] = abi.Result{Refused: true, Field: p.Field, Reason: p.Reason}
			continue
		}
		out[i] = abi.Result{Data: data}
	}
	return out
}

func sameResults(t *testing.T, got, want []abi.Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Refused != w.Refused || string(g.Data) != string(w.Data) || g.Field != w.Field || g.Reason != w.Reason {
			t.Fatalf("result %d = %+v (data %s), want %+v (data %s)", i, g, g.Data, w, w.Data)
		}
	}
}

func TestQuotesExamples(t *testing.T) {
	for _, iso := range isolations {
		t.Run(iso, func(t *testing.T) { testQuotesExamples(t, iso) })
	}
}

func testQuotesExamples(t *testing.T, iso string) {
	goWasm, _ := goModules(t)
	h := newHost(t, Config{PoolSize: 2, Isolation: iso})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		wasm func(testing.TB) []byte
	}{
		{"go", func(testing.TB) []byte { return goWasm }},
		{"go-json", goJSONModule},
		{"assemblyscript", asModule},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := h.Load(ctx, tc.wasm(t))
			if err != nil {
				t.Fatal(err)
			}
			if m.Info().ABIVersion != abi.Version {
				t.Fatalf("ABI version %d", m.Info().ABIVersion)
			}
			in := sample(500)
			for range 20 {
				b, err := m.Run(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				sameResults(t, b.Results, native(in))
			}
			// A batch with one bad record keeps the others; the bad one says why.
			b, err := m.Run(ctx, []abi.Input{in[0], {Stream: quotes.Stream, Data: []byte(`{"symbol":"x","price":"abc","currency":"usd","ts":1}`)}, in[1]})
			if err != nil {
				t.Fatal(err)
			}
			if b.Results[0].Refused || b.Results[2].Refused || !b.Results[1].Refused || b.Results[1].Field != "/price" {
				t.Fatalf("results %+v", b.Results)
			}
			// Instances are pooled: 21 sequential batches used the one made at Load.
			if n := m.instances.Load(); n != 1 {
				t.Fatalf("%d instances for sequential batches, want 1", n)
			}
		})
	}
}

func TestRefusedAtLoad(t *testing.T) {
	h := newHost(t, Config{MaxModuleBytes: 4 << 20})
	ctx := context.Background()
	i32 := byte(0x7f)
	wasi := func(name string, params ...byte) wasmImport {
		return wasmImport{"wasi_snapshot_preview1", name, wasmFunc{params, []byte{i32}}}
	}
	for _, tc := range []struct {
		name, want string
		wasm       []byte
	}{
		{"not wasm", "not a WebAssembly module", []byte("#!/bin/sh\nrm -rf /\n")},
		{"empty", "not a WebAssembly module", nil},
		{"component", "components are not supported", []byte("\x00asm\x0d\x00\x01\x00")},
		{"over size", "at most 4194304", append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 4<<20)...)},
		{"garbage after the header", "does not compile", []byte("\x00asm\x01\x00\x00\x00\xff\xff")},
		{"wasi file system", "wasi_snapshot_preview1.path_open (no file system)", handModule([]wasmImport{wasi("path_open", i32, i32, i32, i32, i32, 0x7e, 0x7e, i32, i32), wasi("fd_read", i32, i32, i32, i32)}, true)},
		{"wasi sockets", "wasi_snapshot_preview1.sock_accept (no network)", handModule([]wasmImport{wasi("sock_accept", i32, i32, i32)}, true)},
		{"another import module", "env.fetch (only wasi_snapshot_preview1 functions are provided)", handModule([]wasmImport{{"env", "fetch", wasmFunc{[]byte{i32}, nil}}}, true)},
		{"wrong signature", "fd_write with the wrong signature", handModule([]wasmImport{wasi("fd_write", i32)}, true)},
		{"no memory", `missing export "memory"`, handModule(nil, false)},
		{"missing exports", `missing export "connect_abi_version"`, handModule(nil, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Load(ctx, tc.wasm)
			var me *ModuleError
			if !errors.As(err, &me) {
				t.Fatalf("Load = %v, want a *ModuleError", err)
			}
			if !strings.Contains(me.Reason, tc.want) {
				t.Fatalf("reason %q, want it to contain %q", me.Reason, tc.want)
			}
		})
	}
}

// TestContainment runs each misbehaving transform while another integration's transform
// keeps normalizing batches on the same host, and checks both: the misbehaviour is stopped
// or refused with its reason, and every batch of the well-behaved one came back right.
func TestContainment(t *testing.T) {
	for _, iso := range isolations {
		t.Run(iso, func(t *testing.T) { testContainment(t, iso) })
	}
}

func testContainment(t *testing.T, iso string) {
	goWasm, hostileWasm := goModules(t)
	h := newHost(t, Config{
		Isolation:      iso,
		BatchTimeout:   3 * time.Second,
		MaxMemoryPages: 512, // 32 MiB
		MaxOutputBytes: 3 << 20,
		MaxRecordBytes: 256 << 10,
		MaxLogBytes:    4 << 10,
		PoolSize:       2,
	})
	ctx := context.Background()
	good, err := h.Load(ctx, goWasm)
	if err != nil {
		t.Fatal(err)
	}
	hostile, err := h.Load(ctx, hostileWasm)
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var served int
	var serveErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		in := sample(100)
		want := native(in)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := good.Run(ctx, in)
			if err != nil {
				serveErr = err
				return
			}
			for i := range want {
				if string(b.Results[i].Data) != string(want[i].Data) || b.Results[i].Reason != want[i].Reason {
					serveErr = fmt.Errorf("batch %d, result %d = %+v, want %+v", served, i, b.Results[i], want[i])
					return
				}
			}
			served++
		}
	}()

	batch := func(stream string, n int) []abi.Input {
		in := make([]abi.Input, n)
		for i := range in {
			in[i] = abi.Input{Stream: stream, Data: []byte(`{"i":` + fmt.Sprint(i) + `}`)}
		}
		return in
	}
	echoes := func(t *testing.T) {
		t.Helper()
		b, err := hostile.Run(ctx, batch("echo", 3))
		if err != nil {
			t.Fatalf("the next batch after the failure: %v", err)
		}
		if string(b.Results[2].Data) != `{"i":2}` {
			t.Fatalf("echo: %+v", b.Results)
		}
	}
	batchFails := func(t *testing.T, stream string, want string) {
		t.Helper()
		_, err := hostile.Run(ctx, batch(stream, 2))
		var be *BatchError
		if !errors.As(err, &be) {
			t.Fatalf("Run(%s) = %v, want a *BatchError", stream, err)
		}
		if !strings.Contains(be.Reason, want) {
			t.Fatalf("reason %q, want it to contain %q", be.Reason, want)
		}
	}

	// Subtests run one after the other on the hostile module, each while good is serving.
	t.Run("loops forever", func(t *testing.T) {
		start := time.Now()
		batchFails(t, "spin", "ran past the time limit of 3s")
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("stopping a spinning guest took %s", d)
		}
		echoes(t)
	})
	t.Run("allocates until it traps", func(t *testing.T) {
		batchFails(t, "hog", "connect_transform trapped: wasm error: unreachable; its log begins: runtime: out of memory")
		echoes(t)
	})
	t.Run("huge records", func(t *testing.T) {
		b, err := hostile.Run(ctx, batch("flood", 2))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Results {
			if !r.Refused || !strings.Contains(r.Reason, "at most 262144") {
				t.Fatalf("a 1 MiB record: %+v", r)
			}
		}
	})
	t.Run("huge output", func(t *testing.T) {
		_, err := hostile.Run(ctx, batch("flood", 4))
		var be *BatchError
		if !errors.As(err, &be) || !strings.Contains(be.Reason, "the output of the batch is 4194") {
			t.Fatalf("4 MiB of output: %v, want a *BatchError naming the size", err)
		}
		echoes(t)
	})
	t.Run("floods its log", func(t *testing.T) {
		b, err := hostile.Run(ctx, batch("chatty", 1))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Log) != 4<<10 || b.LogDropped != 1<<20-4<<10 {
			t.Fatalf("log %d bytes kept, %d dropped; want %d and %d", len(b.Log), b.LogDropped, 4<<10, 1<<20-4<<10)
		}
		if string(b.Results[0].Data) != `{"i":0}` {
			t.Fatalf("%+v", b.Results)
		}
	})
	t.Run("refused modules", func(t *testing.T) {
		for _, w := range [][]byte{[]byte("not wasm at all"), handModule([]wasmImport{{"wasi_snapshot_preview1", "sock_open", wasmFunc{[]byte{0x7f}, []byte{0x7f}}}}, true)} {
			var me *ModuleError
			if _, err := h.Load(ctx, w); !errors.As(err, &me) {
				t.Fatalf("Load = %v, want a *ModuleError", err)
			}
		}
	})
	close(stop)
	wg.Wait()
	if serveErr != nil {
		t.Fatalf("the other integration's transform: %v", serveErr)
	}
	if served == 0 {
		t.Fatal("the other integration's transform served no batch meanwhile")
	}
	t.Logf("the other integration's transform served %d batches of 100 meanwhile", served)
}

func TestRunHonoursTheCallersContext(t *testing.T) {
	for _, iso := range isolations {
		t.Run(iso, func(t *testing.T) { testRunHonoursTheCallersContext(t, iso) })
	}
}

func testRunHonoursTheCallersContext(t *testing.T, iso string) {
	_, hostileWasm := goModules(t)
	h := newHost(t, Config{BatchTimeout: time.Minute, PoolSize: 1, Isolation: iso})
	m, err := h.Load(context.Background(), hostileWasm)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{}, 1)
	m.acquired = func() { held <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := m.Run(ctx, []abi.Input{{Stream: "spin", Data: []byte(`{}`)}})
		done <- err
	}()
	// The spinning batch holds the only instance: a second caller waits, and gives up with
	// its own context.
	<-held
	waitCtx, waitCancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer waitCancel()
	if _, err := m.Run(waitCtx, []abi.Input{{Stream: "echo", Data: []byte(`{}`)}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a waiting caller: %v, want its deadline", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled batch: %v, want context.Canceled", err)
	}
}

// TestWorkerDies: a worker that dies between batches (here killed from outside; in production
// the kernel's RLIMIT_AS or OOM killer) fails the batch it was given with the reason, and the
// next batch gets a new worker.
func TestWorkerDies(t *testing.T) {
	goWasm, _ := goModules(t)
	h := newHost(t, Config{Isolation: IsolationProcess, PoolSize: 1})
	ctx := context.Background()
	m, err := h.Load(ctx, goWasm)
	if err != nil {
		t.Fatal(err)
	}
	inst := <-m.idle
	w, ok := inst.(*worker)
	if !ok {
		t.Fatalf("instance %T, want a *worker", inst)
	}
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-w.waited
	m.idle <- inst
	in := sample(20)
	_, err = m.Run(ctx, in)
	var be *BatchError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "worker process died (signal: killed)") {
		t.Fatalf("a batch on a dead worker: %v, want a *BatchError naming the death", err)
	}
	b, err := m.Run(ctx, in)
	if err != nil {
		t.Fatalf("the next batch: %v", err)
	}
	sameResults(t, b.Results, native(in))
	if n := m.instances.Load(); n != 2 {
		t.Fatalf("%d workers started, want 2 (the first and its replacement)", n)
	}
}

func TestIsolationSetting(t *testing.T) {
	for v, want := range map[string]string{"": IsolationProcess, "process": IsolationProcess, "inprocess": IsolationInProcess} {
		c, err := ConfigFromEnv(func(k string) string {
			if k == "WASM_ISOLATION" {
				return v
			}
			return ""
		})
		if err != nil {
			t.Fatalf("WASM_ISOLATION=%q: %v", v, err)
		}
		// MaybeWorker ran in TestMain: the default is process isolation.
		if got := c.withDefaults().Isolation; got != want {
			t.Fatalf("WASM_ISOLATION=%q: %q, want %q", v, got, want)
		}
	}
	_, err := ConfigFromEnv(func(k string) string {
		if k == "WASM_ISOLATION" {
			return "vm"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), `Isolation (WASM_ISOLATION) must be "process" or "inprocess", not "vm"`) {
		t.Fatalf("WASM_ISOLATION=vm: %v", err)
	}
}
