//go:build unix && !linux

package etcdtest

import "syscall"

// sysProcAttr: no parent-death signal outside Linux; a test binary
// killed without its cleanup leaves its members running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
