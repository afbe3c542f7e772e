// Package durable writes files that must survive a crash whole: data is
// fsynced before a rename puts it in place, and the directory after.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes data to path (created or truncated, with mode perm)
// and fsyncs it before closing.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SyncDir fsyncs dir, making the renames and creations in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// ReplaceFile replaces path by data atomically and durably: written and
// fsynced as path.tmp, renamed over path, the directory fsynced. After a
// crash path holds the old content or the new, whole.
func ReplaceFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := WriteFile(tmp, data, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}
