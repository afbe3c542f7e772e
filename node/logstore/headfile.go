package logstore

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tsnode/tsnode/protocol"
)

// SaveHead replaces dir's head file with sth atomically and durably:
// the new file is written and fsynced under a temporary name, renamed
// over the old one, and the directory fsynced, so that after a crash
// the file holds either the old head or the new one, whole.
func SaveHead(dir string, sth *protocol.SignedTreeHead) error {
	path := filepath.Join(dir, HeadFileName)
	tmp := path + ".tmp"
	if err := writeSynced(tmp, protocol.MarshalHeadFile(sth)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the tree head: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving the tree head: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving the tree head: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving the tree head: fsync %s: %w", dir, err)
	}
	return nil
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
