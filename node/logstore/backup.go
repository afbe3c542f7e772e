package logstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/internal/merklelog"
)

// Backup copies the data directory dataDir, whose log lg is open, into
// out, a directory that must not exist yet and that is itself a data
// directory a server can start on: the guard and head.json as last
// saved, then log.db as of one read transaction begun after reading
// them, so that the copy holds every stamp they cover (both are saved
// only after their stamps are appended). The copy is written under a temporary
// name, fsynced and renamed: out appears whole or not at all. It
// returns the number of stamps copied.
func Backup(lg *merklelog.Log, dataDir, out string) (uint64, error) {
	if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			return 0, fmt.Errorf("backup: %s exists: give a new directory", out)
		}
		return 0, fmt.Errorf("backup: %w", err)
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".partial-")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	size, err := backupInto(lg, dataDir, tmp)
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err == nil {
		err = durable.SyncDir(parent)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return 0, fmt.Errorf("backup of %s into %s: %w", dataDir, out, err)
	}
	return size, nil
}

func backupInto(lg *merklelog.Log, dataDir, tmp string) (uint64, error) {
	// A guard slot rewritten during the read may come out torn: the
	// copy's other slot then holds the guard before it, which the copy
	// of log.db reproduces too (ReadGuard takes it).
	for _, name := range []string{GuardFileName, HeadFileName} {
		b, err := os.ReadFile(filepath.Join(dataDir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist): // no head signed yet
		case err != nil:
			return 0, err
		default:
			if err := durable.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
				return 0, err
			}
		}
	}
	f, err := os.OpenFile(filepath.Join(tmp, merklelog.FileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	size, err := lg.Backup(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return size, durable.SyncDir(tmp)
}

// BackupStopped is Backup of the data directory of a server that is not
// running: the log is opened read-only for the copy. While a server
// runs, it holds the log's lock, and only it can back up (SIGUSR1 with
// --backup-dir).
func BackupStopped(dataDir, out string) (uint64, error) {
	lg, err := merklelog.OpenReadOnly(dataDir)
	if err != nil {
		return 0, fmt.Errorf("%w (a running server backs up its own log: start it with --backup-dir DIR and send it SIGUSR1)", err)
	}
	defer lg.Close()
	return Backup(lg, dataDir, out)
}
