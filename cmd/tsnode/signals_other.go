//go:build !unix

package main

import "os"

// backupSignals: none where there is no SIGUSR1; back up a stopped
// server with tsnode log backup.
var backupSignals []os.Signal
