package main

import (
	"fmt"
	"io"

	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/logstore"
)

// cmdLogBackup is `tsnode log backup`: a consistent copy of a stopped
// server's data directory. A running server holds the log's lock (bbolt
// locks the file exclusively for its writer, and a reader's shared lock
// waits for it), so another process cannot read a consistent log while
// it runs: the server writes its own backups, on SIGUSR1, into
// --backup-dir.
func cmdLogBackup(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode log backup", stderr)
	data := fs.String("data", node.DefaultDataDir, "the stopped server's data `DIR` (log.db, guard and head.json)")
	out := fs.String("out", "", "write the copy into this new `DIR`, itself a data directory a server can start on (required)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *out == "" {
		return usageErr("log backup needs --out DIR and takes no arguments")
	}
	n, err := logstore.BackupStopped(*data, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup of %s written to %s: %d stamps (check it with tsnode log check --data %s)\n", *data, *out, n, *out)
	return nil
}
