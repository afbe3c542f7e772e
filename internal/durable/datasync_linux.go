package durable

import (
	"os"

	"syscall"
)

// Datasync flushes f's data, and of its metadata only what reading the
// data back needs (fdatasync): for a file rewritten in place at a size
// it already had, one device write instead of fsync's journal commit.
func Datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
