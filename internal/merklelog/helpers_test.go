package merklelog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func openT(tb testing.TB, dir string) *Log {
	tb.Helper()
	open := Open
	if _, err := os.Stat(filepath.Join(dir, FileName)); errors.Is(err, fs.ErrNotExist) {
		open = Create
	}
	l, err := open(dir)
	if err != nil {
		tb.Fatalf("opening the log in %s: %v", dir, err)
	}
	return l
}

// mkLeaf encodes a leaf the way the server would: serial and batch time
// are part of the leaf bytes.
func mkLeaf(serial uint64, t time.Time, tag string) []byte {
	return fmt.Appendf(nil, "serial=%d time=%s tag=%s", serial, t.Format(time.RFC3339Nano), tag)
}

// appendN appends a batch of n leaves and checks the Batch fields.
func appendN(tb testing.TB, l *Log, n int, now time.Time, tag string) Batch {
	tb.Helper()
	before := l.Size()
	b, err := l.Append(func(first uint64, bt time.Time) ([][]byte, error) {
		leaves := make([][]byte, n)
		for i := range leaves {
			leaves[i] = mkLeaf(first+uint64(i), bt, tag)
		}
		return leaves, nil
	}, now)
	if err != nil {
		tb.Fatalf("Append(%d): %v", n, err)
	}
	if b.FirstIndex != before || b.Size != before+uint64(n) || l.Size() != b.Size {
		tb.Fatalf("Append(%d) at size %d: got first %d size %d, Size() %d", n, before, b.FirstIndex, b.Size, l.Size())
	}
	return b
}

// refTree is an in-memory reference built with tlog only, to cross-check
// what the log stores on disk.
type refTree struct{ hashes []tlog.Hash }

func (r *refTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = r.hashes[x]
	}
	return out, nil
}

func (r *refTree) add(tb testing.TB, n int64, leaf []byte) {
	hs, err := tlog.StoredHashes(n, leaf, r)
	if err != nil {
		tb.Fatal(err)
	}
	r.hashes = append(r.hashes, hs...)
}

func (r *refTree) root(tb testing.TB, n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, r)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// buildLog creates a log in dir with batches of the given sizes, tagging
// leaves with tag, and returns the leaves and the root for every size.
func buildLog(tb testing.TB, dir, tag string, batches []int) (*Log, [][]byte, []tlog.Hash) {
	tb.Helper()
	l := openT(tb, dir)
	for i, n := range batches {
		appendN(tb, l, n, t0.Add(time.Duration(i)*time.Second), tag)
	}
	size := l.Size()
	leaves := make([][]byte, size)
	roots := make([]tlog.Hash, size+1)
	for i := range size + 1 {
		if i < size {
			leaf, err := l.Leaf(i)
			if err != nil {
				tb.Fatal(err)
			}
			leaves[i] = leaf
		}
		root, err := l.TreeHash(i)
		if err != nil {
			tb.Fatal(err)
		}
		roots[i] = root
	}
	return l, leaves, roots
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}
