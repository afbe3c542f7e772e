//go:build !linux

package durable

import "os"

// Datasync flushes f (fsync where fdatasync is not available).
func Datasync(f *os.File) error { return f.Sync() }
