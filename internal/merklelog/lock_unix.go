//go:build unix

package merklelog

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockShared takes a shared lock on path, as bbolt's readers do, so that
// checkFile does not read a file a server is writing: if one holds it,
// the log is in use.
func lockShared(path string) (unlock func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("merklelog: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUse(path)
		}
		return nil, fmt.Errorf("merklelog: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
