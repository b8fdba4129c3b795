//go:build !linux

package wasmhost

import "syscall"

func workerSysProcAttr() *syscall.SysProcAttr { return nil }

// limitAddressSpace is Linux only (RLIMIT_AS); elsewhere the wazero memory limit alone
// bounds a guest.
func limitAddressSpace(uint64) {}
