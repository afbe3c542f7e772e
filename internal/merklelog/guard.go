package merklelog

import (
	"fmt"
	"runtime/debug"
)

// guard runs fn, one call into bbolt, and turns a panic into an error
// naming the file: bbolt panics on pages it cannot make sense of, and a
// read through its mmap past the end of a file cut short faults, which
// SetPanicOnFault turns into a panic of this goroutine instead of a crash
// of the process. checkFile refuses most damage before bbolt sees it;
// this is for what it does not see.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s is damaged: bbolt failed reading it: %v", ErrCorrupt, path, r)
		}
	}()
	return fn()
}
