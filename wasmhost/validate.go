package wasmhost

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Names of the ABI's exports (see the package doc).
const (
	ExportMemory     = "memory"
	ExportABIVersion = "connect_abi_version"
	ExportAlloc      = "connect_alloc"
	ExportTransform  = "connect_transform"
	ExportGC         = "connect_gc"
	ExportInitialize = "_initialize"
)

// ModuleError is a module refused at upload (or when loaded): Reason says why in words a
// developer can act on. It is never about the host.
type ModuleError struct {
	Reason string
}

func (e *ModuleError) Error() string { return "wasmhost: module refused: " + e.Reason }

func refuse(format string, args ...any) error {
	return &ModuleError{Reason: fmt.Sprintf(format, args...)}
}

var wasmMagic = []byte("\x00asm")

// checkBytes refuses what is not a core WebAssembly module, or too big, before compiling.
func (h *Host) checkBytes(wasm []byte) error {
	if len(wasm) > h.cfg.MaxModuleBytes {
		return refuse("the module is %d bytes, at most %d", len(wasm), h.cfg.MaxModuleBytes)
	}
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], wasmMagic) {
		return refuse("not a WebAssembly module (it does not start with \\0asm)")
	}
	if !bytes.Equal(wasm[4:8], []byte{1, 0, 0, 0}) {
		return refuse("not a WebAssembly core module of version 1 (components are not supported)")
	}
	return nil
}

type sig struct{ params, results []api.ValueType }

var requiredExports = map[string]sig{
	ExportABIVersion: {nil, []api.ValueType{i32}},
	ExportAlloc:      {[]api.ValueType{i32}, []api.ValueType{i32}},
	ExportTransform:  {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
}

var optionalExports = map[string]sig{
	ExportGC:         {nil, nil},
	ExportInitialize: {nil, nil},
}

// checkCompiled refuses a compiled module whose imports or exports break the ABI.
func checkCompiled(cm wazero.CompiledModule) error {
	var bad []string
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod != wasiModule {
			bad = append(bad, fmt.Sprintf("%s.%s (only %s functions are provided)", mod, name, wasiModule))
			continue
		}
		w, ok := allowedWASI[name]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s.%s (%s)", mod, name, forbiddenWhy(name)))
		case !slices.Equal(f.ParamTypes(), w.params) || !slices.Equal(f.ResultTypes(), w.results):
			bad = append(bad, fmt.Sprintf("%s.%s with the wrong signature", mod, name))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		bad = slices.Compact(bad)
		return refuse("forbidden imports: %s", strings.Join(bad, ", "))
	}
	if len(cm.ImportedMemories()) > 0 {
		return refuse("imports a memory: a transform exports its own %q", ExportMemory)
	}
	if _, ok := cm.ExportedMemories()[ExportMemory]; !ok {
		return refuse("missing export %q (its linear memory)", ExportMemory)
	}
	exports := cm.ExportedFunctions()
	for _, name := range slices.Sorted(maps.Keys(requiredExports)) {
		want := requiredExports[name]
		f, ok := exports[name]
		if !ok {
			return refuse("missing export %q (ABI version 1 needs %s, %s and %s)", name, ExportABIVersion, ExportAlloc, ExportTransform)
		}
		if !slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results) {
			return refuse("export %q has the signature %s, want %s", name, sigString(f.ParamTypes(), f.ResultTypes()), sigString(want.params, want.results))
		}
	}
	for name, want := range optionalExports {
		if f, ok := exports[name]; ok && (!slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results)) {
			return refuse("export %q has the signature %s, want %s", name, sigString(f.ParamTypes(), f.ResultTypes()), sigString(want.params, want.results))
		}
	}
	return nil
}

func forbiddenWhy(name string) string {
	switch {
	case strings.HasPrefix(name, "path_"), strings.HasPrefix(name, "fd_"):
		return "no file system"
	case strings.HasPrefix(name, "sock_"):
		return "no network"
	default:
		return "not provided"
	}
}

func sigString(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(s, ", ") + ")"
	}
	return name(params) + " -> " + name(results)
}

// WasmMediaType is the media type of a WebAssembly module (an upload's Content-Type).
const WasmMediaType = "application/wasm"
