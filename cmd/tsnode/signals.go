package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/tsnode/tsnode/node"
)

var opsLog = logging.Logger("tsnode/ops")

// opsSignals catches, from now on, the signals an operator sends a
// running server or verifier: SIGHUP reloads the keys directory, and
// for a server the backup signal (SIGUSR1, where there is one) writes a
// backup. Without this, either signal would end the process.
func opsSignals(server bool) chan os.Signal {
	ch := make(chan os.Signal, 4)
	sigs := []os.Signal{syscall.SIGHUP}
	if server {
		sigs = append(sigs, backupSignals...)
	}
	signal.Notify(ch, sigs...)
	return ch
}

// serveOps answers the signals of opsSignals until ctx ends.
func serveOps(ctx context.Context, ch chan os.Signal, svc *node.Service, f roleFlags) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-ch:
			if sig == syscall.SIGHUP {
				// ReloadKeys logs what changed.
				if _, err := svc.ReloadKeys(f.keys); err != nil {
					opsLog.Errorw("SIGHUP: "+err.Error(), "keys", f.keys)
				}
				continue
			}
			backup(svc, f.backupDir)
		}
	}
}

// backup writes a backup of the server's data into a new folder of dir.
func backup(svc *node.Service, dir string) {
	if dir == "" {
		opsLog.Errorw("backup signal ignored: the server runs without --backup-dir")
		return
	}
	out := filepath.Join(dir, "tsnode-backup-"+time.Now().UTC().Format("20060102T150405.000000000Z"))
	n, err := svc.Backup(out)
	if err != nil {
		opsLog.Errorw("backup failed", "err", err)
		return
	}
	opsLog.Infow("backup written", "dir", out, "stamps", n)
}
