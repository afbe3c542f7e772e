package merklelog

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendBatches(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l := openT(t, dir)
	defer l.Close()

	if size, root, tm, err := l.Root(); err != nil || size != 0 || root != tlog.Hash(sha256.Sum256(nil)) || !tm.IsZero() {
		t.Fatalf("empty log Root() = %d, %v, %v, %v", size, root, tm, err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700}, {filepath.Join(dir, FileName), 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^c.mode != 0 {
			t.Errorf("%s mode %v, want at most %v", c.path, fi.Mode().Perm(), c.mode)
		}
	}

	ref := &refTree{}
	var prev time.Time
	tests := []struct {
		name string
		n    int
		now  time.Time
	}{
		{"single", 1, t0},
		{"pair", 2, t0.Add(time.Second)},
		{"odd", 7, t0.Add(2 * time.Second)},
		{"clock stepped back", 16, t0.Add(-time.Hour)},
		{"same instant", 3, t0.Add(-time.Hour)},
		{"power of two", 32, t0.Add(time.Hour)},
		{"non-UTC now", 5, t0.Add(2 * time.Hour).In(time.FixedZone("X", 3600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotFirst uint64
			var gotTime time.Time
			b, err := l.Append(func(first uint64, bt time.Time) ([][]byte, error) {
				gotFirst, gotTime = first, bt
				leaves := make([][]byte, tt.n)
				for i := range leaves {
					leaves[i] = mkLeaf(first+uint64(i), bt, tt.name)
				}
				return leaves, nil
			}, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if b.FirstIndex != gotFirst || b.Time != gotTime {
				t.Fatalf("Batch %+v differs from build args (%d, %v)", b, gotFirst, gotTime)
			}
			if b.Time.Location() != time.UTC {
				t.Errorf("batch time %v not UTC", b.Time)
			}
			if !b.Time.After(prev) {
				t.Errorf("batch time %v not after previous %v", b.Time, prev)
			}
			if want := tt.now.UTC(); tt.now.After(prev) && !b.Time.Equal(want) {
				t.Errorf("batch time %v, want now %v", b.Time, want)
			} else if !tt.now.After(prev) && !b.Time.Equal(prev.Add(time.Nanosecond)) {
				t.Errorf("batch time %v, want previous+1ns %v", b.Time, prev.Add(time.Nanosecond))
			}
			prev = b.Time
			for i := range tt.n {
				idx := b.FirstIndex + uint64(i)
				leaf, err := l.Leaf(idx)
				if err != nil {
					t.Fatal(err)
				}
				if want := mkLeaf(idx, b.Time, tt.name); !bytes.Equal(leaf, want) {
					t.Fatalf("Leaf(%d) = %q, want %q", idx, leaf, want)
				}
				ref.add(t, int64(idx), leaf)
			}
			if want := ref.root(t, int64(b.Size)); b.Root != want {
				t.Fatalf("root %v, reference %v", b.Root, want)
			}
			size, root, tm, err := l.Root()
			if err != nil || size != b.Size || root != b.Root || !tm.Equal(b.Time) {
				t.Fatalf("Root() = %d %v %v %v, want %+v", size, root, tm, err, b)
			}
		})
	}

	// Spot-check RFC 6962 hashing independently of tlog for sizes 1 and 2.
	l0, _ := l.Leaf(0)
	l1, _ := l.Leaf(1)
	h0 := sha256.Sum256(append([]byte{0}, l0...))
	h1 := sha256.Sum256(append([]byte{0}, l1...))
	h01 := sha256.Sum256(append(append([]byte{1}, h0[:]...), h1[:]...))
	for size, want := range map[uint64][32]byte{1: h0, 2: h01} {
		if got, err := l.TreeHash(size); err != nil || got != want {
			t.Errorf("TreeHash(%d) = %v, %v; want %v", size, got, err, tlog.Hash(want))
		}
	}
	// Every past tree hash matches the reference.
	for size := range l.Size() + 1 {
		if got, err := l.TreeHash(size); err != nil || got != ref.root(t, int64(size)) {
			t.Fatalf("TreeHash(%d) = %v, %v", size, got, err)
		}
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	appendN(t, l, 10, t0, "x")
	last := appendN(t, l, 5, t0.Add(time.Minute), "x")
	var leaves [][]byte
	for i := range last.Size {
		leaf, err := l.Leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if _, err := l.Leaf(0); !errors.Is(err, ErrClosed) {
		t.Errorf("Leaf after Close: %v, want ErrClosed", err)
	}
	if _, err := l.Append(nil, t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}

	l = openT(t, dir)
	size, root, tm, err := l.Root()
	if err != nil || size != last.Size || root != last.Root || !tm.Equal(last.Time) {
		t.Fatalf("after reopen Root() = %d %v %v %v, want %+v", size, root, tm, err, last)
	}
	for i, want := range leaves {
		if got, err := l.Leaf(uint64(i)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("after reopen Leaf(%d) = %q, %v; want %q", i, got, err, want)
		}
	}
	// The wall clock stepped back an hour: serials continue, time still increases.
	next := appendN(t, l, 3, t0.Add(time.Minute-time.Hour), "y")
	if next.FirstIndex != last.Size {
		t.Errorf("first index after restart %d, want %d", next.FirstIndex, last.Size)
	}
	if want := last.Time.Add(time.Nanosecond); !next.Time.Equal(want) {
		t.Errorf("time after restart with clock stepped back = %v, want %v", next.Time, want)
	}
	l.Close()

	l = openT(t, dir)
	defer l.Close()
	if _, _, tm, _ := l.Root(); !tm.Equal(next.Time) {
		t.Errorf("persisted time %v, want %v", tm, next.Time)
	}
	p, err := l.ConsistencyProof(last.Size, next.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyConsistency(last.Size, last.Root, next.Size, next.Root, p); err != nil {
		t.Errorf("consistency across restart: %v", err)
	}
}

func TestFailedBuildAppendsNothing(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	before := appendN(t, l, 4, t0, "x")
	errBuild := errors.New("build failed")

	tests := []struct {
		name  string
		build func(uint64, time.Time) ([][]byte, error)
		want  error
	}{
		{"error", func(uint64, time.Time) ([][]byte, error) { return [][]byte{[]byte("x")}, errBuild }, errBuild},
		{"empty", func(uint64, time.Time) ([][]byte, error) { return nil, nil }, ErrEmptyBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Append(tt.build, t0.Add(time.Hour))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append: %v, want %v", err, tt.want)
			}
			size, root, tm, _ := l.Root()
			if size != before.Size || root != before.Root || !tm.Equal(before.Time) {
				t.Fatalf("head changed after failed append: %d %v %v", size, root, tm)
			}
			if _, err := l.Leaf(before.Size); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("Leaf(%d) after failed append: %v", before.Size, err)
			}
		})
	}
	t.Run("panic", func(t *testing.T) {
		func() {
			defer func() { recover() }()
			l.Append(func(uint64, time.Time) ([][]byte, error) { panic("boom") }, t0)
		}()
		if l.Size() != before.Size {
			t.Fatalf("size %d after panicking build", l.Size())
		}
	})
	t.Run("bad time", func(t *testing.T) {
		if _, err := l.Append(func(uint64, time.Time) ([][]byte, error) { return [][]byte{{1}}, nil }, time.Time{}); err == nil {
			t.Fatal("Append with zero time succeeded")
		}
	})

	l.Close()
	l = openT(t, dir)
	defer l.Close()
	if l.Size() != before.Size {
		t.Fatalf("size on disk %d, want %d", l.Size(), before.Size)
	}
	// Serials continue where the last successful batch ended; the failed
	// batches' times were not persisted.
	b := appendN(t, l, 1, t0, "y")
	if b.FirstIndex != before.Size || !b.Time.Equal(before.Time.Add(time.Nanosecond)) {
		t.Fatalf("next batch %+v", b)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	start := time.Now()
	l2, err := Open(dir)
	if err == nil {
		l2.Close()
		t.Fatal("second Open succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
	if msg := err.Error(); !strings.Contains(msg, "in use") || !strings.Contains(msg, filepath.Join(dir, FileName)) {
		t.Errorf("error %q should say the log file is in use", msg)
	}
	l.Close()
	l2 = openT(t, dir)
	l2.Close()
}

func TestOutOfRange(t *testing.T) {
	l := openT(t, t.TempDir())
	defer l.Close()
	if _, err := l.InclusionProof(0, 0); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("empty log InclusionProof: %v", err)
	}
	appendN(t, l, 5, t0, "x")
	appendN(t, l, 3, t0, "x") // size 8

	errOf := func(_ any, err error) error { return err }
	tests := []struct {
		name string
		err  error
	}{
		{"leaf == size", errOf(l.Leaf(8))},
		{"leaf huge", errOf(l.Leaf(1 << 63))},
		{"tree hash > size", errOf(l.TreeHash(9))},
		{"inclusion index == size", errOf(l.InclusionProof(8, 8))},
		{"inclusion index > size", errOf(l.InclusionProof(5, 4))},
		{"inclusion size > log", errOf(l.InclusionProof(0, 9))},
		{"inclusion size 0", errOf(l.InclusionProof(0, 0))},
		{"inclusion huge", errOf(l.InclusionProof(1<<63, 1<<64-1))},
		{"consistency old 0", errOf(l.ConsistencyProof(0, 8))},
		{"consistency old > new", errOf(l.ConsistencyProof(5, 4))},
		{"consistency new > log", errOf(l.ConsistencyProof(1, 9))},
		{"consistency huge", errOf(l.ConsistencyProof(1<<63, 1<<64-1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, ErrOutOfRange) {
				t.Fatalf("got %v, want ErrOutOfRange", tt.err)
			}
		})
	}
	// Edges that are in range.
	if _, err := l.TreeHash(8); err != nil {
		t.Error(err)
	}
	if _, err := l.ConsistencyProof(8, 8); err != nil {
		t.Error(err)
	}
	if _, err := l.Leaf(7); err != nil {
		t.Error(err)
	}
}

func TestOpenRejectsBadStore(t *testing.T) {
	// mutate opens the raw bbolt file of a fresh 13-leaf log and changes it.
	setup := func(t *testing.T, mutate func(tx *bolt.Tx) error) string {
		dir := t.TempDir()
		l := openT(t, dir)
		appendN(t, l, 13, t0, "x")
		l.Close()
		db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(mutate); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name   string
		mutate func(tx *bolt.Tx) error
	}{
		{"size too large", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySize, u64(14)) }},
		{"size too small", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySize, u64(12)) }},
		{"root changed", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyRoot, make([]byte, 32)) }},
		{"last hash changed", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketHashes).Put(u64(uint64(tlog.StoredHashCount(13)-1)), make([]byte, 32))
		}},
		{"last hash missing", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketHashes).Delete(u64(uint64(tlog.StoredHashCount(13) - 1)))
		}},
		{"last leaf missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketLeaves).Delete(u64(12)) }},
		{"time missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyTime) }},
		{"version", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte{9}) }},
		{"no hashes bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketHashes) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := setup(t, tt.mutate)
			l, err := Open(dir)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded on a corrupted store")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) {
				t.Fatalf("error %q should wrap ErrCorrupt and name the file", err)
			}
		})
	}

	t.Run("not a bbolt file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir)
		if err == nil {
			l.Close()
			t.Fatal("Open succeeded on garbage")
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name %s", err, path)
		}
	})
}

// TestConcurrent runs appends and verifying readers together (for -race).
func TestConcurrent(t *testing.T) {
	l := openT(t, t.TempDir())
	defer l.Close()
	appendN(t, l, 1, t0, "seed")
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 3 {
		wg.Go(func() {
			for range 10 {
				_, err := l.Append(func(first uint64, bt time.Time) ([][]byte, error) {
					return [][]byte{mkLeaf(first, bt, "w"), mkLeaf(first+1, bt, string(rune('a'+w)))}, nil
				}, t0)
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for range 30 {
				size, root, _, err := l.Root()
				if err == nil {
					var p tlog.RecordProof
					var leaf []byte
					i := size - 1
					if p, err = l.InclusionProof(i, size); err == nil {
						if leaf, err = l.Leaf(i); err == nil {
							err = protocol.VerifyInclusion(leaf, i, size, root, p)
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
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if l.Size() != 61 {
		t.Errorf("size %d, want 61", l.Size())
	}
	// Serials were handed out without gaps or duplicates.
	for i := range l.Size() {
		leaf, _ := l.Leaf(i)
		if !bytes.HasPrefix(leaf, fmt.Appendf(nil, "serial=%d ", i)) {
			t.Fatalf("leaf %d = %q", i, leaf)
		}
	}
}

func TestInclusionProofsMatchSingleProofs(t *testing.T) {
	l, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, n := range []int{1, 5, 17, 64} {
		if _, err := l.Append(func(first uint64, _ time.Time) ([][]byte, error) {
			leaves := make([][]byte, n)
			for i := range leaves {
				leaves[i] = []byte(fmt.Sprintf("leaf %d", first+uint64(i)))
			}
			return leaves, nil
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	size := l.Size()
	root, _ := l.TreeHash(size)
	proofs, err := l.InclusionProofs(3, size-3, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range proofs {
		idx := uint64(3 + i)
		single, _ := l.InclusionProof(idx, size)
		if fmt.Sprint(single) != fmt.Sprint(p) {
			t.Fatalf("leaf %d: batch proof differs from single proof", idx)
		}
		leaf, _ := l.Leaf(idx)
		if err := protocol.VerifyInclusion(leaf, idx, size, root, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.InclusionProofs(size-1, 2, size); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("out of range: %v", err)
	}
}
