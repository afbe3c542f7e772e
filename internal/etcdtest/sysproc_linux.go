package etcdtest

import "syscall"

// sysProcAttr has the kernel kill a member when the test process dies
// without its cleanup (a test binary killed on its timeout), so that no
// etcd outlives the test that started it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
