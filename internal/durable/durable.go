// Package durable writes files that must survive a crash whole: data is
// fsynced before a rename puts it in place, and the directory after.
package durable

import (
	"errors"
	"fmt"
	"io/fs"
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

// CreateNew writes data to a file that did not exist: <base><ext>, or the
// first free <base>.N<ext> (N from 1 to 999), created exclusively and
// fsynced, so that an earlier file (a receipt, a token) is never
// overwritten. It returns the path written.
func CreateNew(base, ext string, data []byte, perm os.FileMode) (string, error) {
	for n := 0; n < 1000; n++ {
		path := base + ext
		if n > 0 {
			path = fmt.Sprintf("%s.%d%s", base, n, ext)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, werr := f.Write(data)
		if serr := f.Sync(); werr == nil {
			werr = serr
		}
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return "", fmt.Errorf("%s: %w", path, werr)
		}
		return path, nil
	}
	return "", fmt.Errorf("%s%s and 999 numbered ones exist", base, ext)
}
