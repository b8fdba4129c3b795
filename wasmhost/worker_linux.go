package wasmhost

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// workerSysProcAttr makes a worker die with its host (the kernel sends SIGKILL when the
// thread that started it exits; the host also closes its stdin).
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// addressSpaceHeadroom is what a worker may map beyond its address space at start and three
// times the guest's memory limit (wazero grows a linear memory by copying it: old and new at
// once, and the Go heap around them): compiled code, the batch and result buffers, the Go
// runtime's own growth.
const addressSpaceHeadroom = 1 << 30

// limitAddressSpace bounds the worker's address space (RLIMIT_AS) to what it maps now plus
// 3 × guestMax plus addressSpaceHeadroom, before any module is compiled: the wazero memory
// limit bounds the guest, this bounds the worker should anything else grow (past it mmap
// fails and the Go runtime dies of "out of memory": the batch fails, the host goes on).
func limitAddressSpace(guestMax uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	var vmKB uint64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			vmKB, _ = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	if vmKB == 0 {
		return
	}
	limit := vmKB<<10 + 3*guestMax + addressSpaceHeadroom
	_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
}
