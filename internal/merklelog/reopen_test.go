package merklelog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"

	bolt "go.etcd.io/bbolt"
)

// dbOf returns the bbolt handle the log currently reads from.
func dbOf(l *Log) *bolt.DB {
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	return l.db
}

// TestReopenKeepsServing appends past several reopens while readers prove
// and read leaves without pause: no reader sees an error, every proof
// verifies, and the file was really reopened.
func TestReopenKeepsServing(t *testing.T) {
	l := openT(t, t.TempDir())
	defer l.Close()
	l.reopenEvery = 8
	appendN(t, l, 1, t0, "seed")
	first := dbOf(l)

	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				size, root, _, err := l.Root()
				if err == nil {
					i := size / 2
					var leaf []byte
					if leaf, err = l.Leaf(i); err == nil {
						proofs, perr := l.InclusionProofs(i, 1, size)
						if err = perr; err == nil {
							err = protocol.VerifyInclusion(leaf, i, size, root, proofs[0])
						}
					}
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for range 40 {
		appendN(t, l, 3, t0, "reopen")
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("reader during reopens: %v", err)
	}
	if dbOf(l) == first {
		t.Errorf("121 leaves with reopenEvery 8, but the bbolt handle never changed")
	}
	if l.sinceReopen >= l.reopenEvery {
		t.Errorf("%d leaves since the last reopen, want fewer than %d", l.sinceReopen, l.reopenEvery)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// What was appended across the reopens is all on disk.
	l2 := openT(t, filepath.Dir(l.path))
	defer l2.Close()
	if l2.Size() != 121 {
		t.Errorf("size %d after reopening, want 121", l2.Size())
	}
}

// TestReopenFailureIsSticky replaces the log file with garbage before a
// reopen: the batch that triggered it is still reported (it is durable in
// the file that was open), and every later call says the reopen failed.
func TestReopenFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	l.reopenEvery = 4
	appendN(t, l, 2, t0, "before")
	path := filepath.Join(dir, FileName)
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a bbolt file, long enough to read a header from it..."), 0o600); err != nil {
		t.Fatal(err)
	}
	if b := appendN(t, l, 2, t0, "trigger"); b.Size != 4 {
		t.Fatalf("size %d, want 4", b.Size)
	}
	_, err := l.Append(func(uint64, time.Time) ([][]byte, error) { return [][]byte{[]byte("x")}, nil }, t0)
	if err == nil || !strings.Contains(err.Error(), "reopen "+path) {
		t.Errorf("Append after a failed reopen: %v, want an error naming the reopen of %s", err, path)
	}
	if _, err := l.InclusionProof(0, 4); err == nil || !strings.Contains(err.Error(), "reopen") {
		t.Errorf("InclusionProof after a failed reopen: %v, want the reopen error", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after a failed reopen: %v", err)
	}
	// The moved file holds all four leaves.
	if err := os.Rename(path+".moved", path); err != nil {
		t.Fatal(err)
	}
	l2 := openT(t, dir)
	defer l2.Close()
	if l2.Size() != 4 {
		t.Errorf("size %d, want the 4 durable leaves", l2.Size())
	}
}

// TestReopenFindsOtherLog swaps in an older copy of the log before a
// reopen: the log notices that the file lost its last batches instead of
// handing out their serials again.
func TestReopenFindsOtherLog(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	l.reopenEvery = 4
	appendN(t, l, 1, t0, "one")
	path := filepath.Join(dir, FileName)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, t0, "two")
	if err := os.Rename(path, path+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2, t0, "trigger")
	_, err = l.TreeHash(1)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("TreeHash after reopening an older copy: %v, want ErrCorrupt", err)
	}
	l.Close()
}
