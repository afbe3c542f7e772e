//go:build unix

package main

import (
	"os"
	"syscall"
)

// backupSignals make a running server write a backup (--backup-dir).
var backupSignals = []os.Signal{syscall.SIGUSR1}
