package wasmhost

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// wasiModule is the only import module a transform may link against.
const wasiModule = "wasi_snapshot_preview1"

// WASI errno values used here.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// wasiFunc is one allowed WASI function: its signature (checked at upload) and our
// implementation, which reaches no file, socket, environment variable or argument.
type wasiFunc struct {
	params, results []api.ValueType
	fn              api.GoModuleFunc
	why             string // why it is harmless (the package doc lists these)
}

// allowedWASI is the whole of what a guest may import. Standard Go's wasip1 runtime imports
// every one of these at start (the fd_* ones from package syscall's init); none of them can
// reach anything: there are no preopened directories and no open descriptors but 0, 1 and 2,
// and 1 and 2 go to the capped log.
var allowedWASI = map[string]wasiFunc{
	"args_sizes_get":      {[]api.ValueType{i32, i32}, []api.ValueType{i32}, zeroSizes, "no arguments"},
	"args_get":            {[]api.ValueType{i32, i32}, []api.ValueType{i32}, success, "no arguments"},
	"environ_sizes_get":   {[]api.ValueType{i32, i32}, []api.ValueType{i32}, zeroSizes, "no environment"},
	"environ_get":         {[]api.ValueType{i32, i32}, []api.ValueType{i32}, success, "no environment"},
	"clock_time_get":      {[]api.ValueType{i32, i64, i32}, []api.ValueType{i32}, clockTimeGet, "the host's clock"},
	"clock_res_get":       {[]api.ValueType{i32, i32}, []api.ValueType{i32}, clockResGet, "the host's clock"},
	"random_get":          {[]api.ValueType{i32, i32}, []api.ValueType{i32}, randomGet, "random bytes"},
	"sched_yield":         {nil, []api.ValueType{i32}, success, "a no-op"},
	"poll_oneoff":         {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, pollOneoff, "every subscription fires at once: a guest never sleeps"},
	"proc_exit":           {[]api.ValueType{i32}, nil, procExit, "ends the instance (the batch fails)"},
	"fd_write":            {[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, fdWrite, "1 and 2 go to the capped log, any other descriptor is EBADF"},
	"fd_close":            {[]api.ValueType{i32}, []api.ValueType{i32}, badf, "EBADF"},
	"fd_fdstat_get":       {[]api.ValueType{i32, i32}, []api.ValueType{i32}, fdFdstatGet, "0, 1 and 2 are character devices, others EBADF"},
	"fd_fdstat_set_flags": {[]api.ValueType{i32, i32}, []api.ValueType{i32}, fdSetFlags, "a no-op on 0, 1 and 2, others EBADF"},
	"fd_prestat_get":      {[]api.ValueType{i32, i32}, []api.ValueType{i32}, badf, "EBADF: no preopened directory"},
	"fd_prestat_dir_name": {[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}, badf, "EBADF: no preopened directory"},
}

// instantiateWASI registers our wasi_snapshot_preview1 in r.
func instantiateWASI(ctx context.Context, r wazero.Runtime) error {
	b := r.NewHostModuleBuilder(wasiModule)
	for name, f := range allowedWASI {
		b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// success answers ESUCCESS (the stack holds the parameters; the result overwrites the first).
func success(_ context.Context, _ api.Module, stack []uint64) { stack[0] = errnoSuccess }

func badf(_ context.Context, _ api.Module, stack []uint64) { stack[0] = errnoBadf }

func zeroSizes(_ context.Context, m api.Module, stack []uint64) {
	mem := m.Memory()
	if !mem.WriteUint32Le(uint32(stack[0]), 0) || !mem.WriteUint32Le(uint32(stack[1]), 0) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func clockTimeGet(_ context.Context, m api.Module, stack []uint64) {
	id, at := uint32(stack[0]), uint32(stack[2])
	var t uint64
	switch id {
	case 0: // realtime
		t = uint64(time.Now().UnixNano())
	case 1: // monotonic
		t = uint64(time.Since(epoch))
	default:
		stack[0] = errnoInval
		return
	}
	if !m.Memory().WriteUint64Le(at, t) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

var epoch = time.Now()

func clockResGet(_ context.Context, m api.Module, stack []uint64) {
	if uint32(stack[0]) > 1 {
		stack[0] = errnoInval
		return
	}
	if !m.Memory().WriteUint64Le(uint32(stack[1]), 1) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func randomGet(_ context.Context, m api.Module, stack []uint64) {
	buf, ok := m.Memory().Read(uint32(stack[0]), uint32(stack[1]))
	if !ok {
		stack[0] = errnoFault
		return
	}
	_, _ = rand.Read(buf)
	stack[0] = errnoSuccess
}

// pollOneoff answers every subscription at once with no error, so a guest's sleep returns
// immediately (a transform has nothing to wait for) and a guest cannot park its instance.
func pollOneoff(_ context.Context, m api.Module, stack []uint64) {
	in, out, n, nevents := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	mem := m.Memory()
	if n == 0 {
		stack[0] = errnoInval
		return
	}
	subs, ok := mem.Read(in, n*48)
	if !ok {
		stack[0] = errnoFault
		return
	}
	evs, ok := mem.Read(out, n*32)
	if !ok {
		stack[0] = errnoFault
		return
	}
	for i := range n {
		s, e := subs[i*48:], evs[i*32:i*32+32]
		clear(e)
		copy(e[0:8], s[0:8]) // userdata
		e[10] = s[8]         // event type = subscription tag
	}
	if !mem.WriteUint32Le(nevents, n) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func procExit(ctx context.Context, m api.Module, stack []uint64) {
	code := uint32(stack[0])
	_ = m.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

// fdWrite sends what the guest writes to 1 and 2 to the batch's log sink (from ctx), which
// keeps at most Config.MaxLogBytes; the guest is always told everything was written.
func fdWrite(ctx context.Context, m api.Module, stack []uint64) {
	fd, iovs, n, nwritten := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	if fd != 1 && fd != 2 {
		stack[0] = errnoBadf
		return
	}
	mem := m.Memory()
	vec, ok := mem.Read(iovs, n*8)
	if !ok {
		stack[0] = errnoFault
		return
	}
	sink, _ := ctx.Value(logKey{}).(*logSink)
	var total uint32
	for i := range n {
		p := binary.LittleEndian.Uint32(vec[i*8:])
		l := binary.LittleEndian.Uint32(vec[i*8+4:])
		b, ok := mem.Read(p, l)
		if !ok {
			stack[0] = errnoFault
			return
		}
		if sink != nil {
			sink.write(b)
		}
		total += l
	}
	if !mem.WriteUint32Le(nwritten, total) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func fdFdstatGet(_ context.Context, m api.Module, stack []uint64) {
	fd, at := uint32(stack[0]), uint32(stack[1])
	if fd > 2 {
		stack[0] = errnoBadf
		return
	}
	var st [24]byte
	st[0] = 2 // character device
	if fd > 0 {
		binary.LittleEndian.PutUint64(st[8:], 1<<6) // fd_write right
	}
	if !m.Memory().Write(at, st[:]) {
		stack[0] = errnoFault
		return
	}
	stack[0] = errnoSuccess
}

func fdSetFlags(_ context.Context, _ api.Module, stack []uint64) {
	if uint32(stack[0]) > 2 {
		stack[0] = errnoBadf
		return
	}
	stack[0] = errnoSuccess
}

type logKey struct{}

// logSink keeps the first max bytes a guest writes in one batch and counts the rest.
type logSink struct {
	max     int
	buf     []byte
	dropped int64
}

func (s *logSink) write(b []byte) {
	room := s.max - len(s.buf)
	if room >= len(b) {
		s.buf = append(s.buf, b...)
		return
	}
	s.buf = append(s.buf, b[:max(room, 0)]...)
	s.dropped += int64(len(b) - max(room, 0))
}

func (s *logSink) reset() { s.buf, s.dropped = s.buf[:0], 0 }
