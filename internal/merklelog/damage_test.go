package merklelog

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// damagedLog builds a closed log of 3000 leaves in 30 batches in a new
// dir and returns the dir and its log.db's path.
func damagedLog(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	l := openT(t, dir)
	for i := range 30 {
		appendN(t, l, 100, t0.Add(time.Duration(i)*time.Second), "d")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, FileName)
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newestMeta returns the page (0 or 1) of the meta page with the higher
// transaction id.
func newestMeta(t *testing.T, b []byte) int {
	t.Helper()
	ps := int(ne.Uint32(b[pageHeaderSize+8:]))
	if ne.Uint64(b[ps+pageHeaderSize+48:]) > ne.Uint64(b[pageHeaderSize+48:]) {
		return 1
	}
	return 0
}

// openAndVerify is what a server does at start: Open, then Verify.
func openAndVerify(dir string) error {
	l, err := Open(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	return l.Verify()
}

// Each kind of damage a disk or an operator does to log.db is refused
// at start with an error that names the file and the damage; none
// panics, and none yields a log that would issue a serial again.
func TestDamagedLogRefused(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string // in the error
	}{
		{"zero-length", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "empty (0 bytes)"},
		{"truncated to half", func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			if err := os.Truncate(path, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "truncated"},
		{"truncated off a page", func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			if err := os.Truncate(path, st.Size()-100); err != nil {
				t.Fatal(err)
			}
		}, "not a multiple of its page size"},
		{"4 KiB of random bytes in the middle", func(t *testing.T, path string) {
			st, _ := os.Stat(path)
			junk := make([]byte, 4096)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			writeAt(t, path, st.Size()/2+1000, junk)
		}, ""},
		{"64 flipped bytes", func(t *testing.T, path string) {
			b := readFile(t, path)
			ps := int(ne.Uint32(b[pageHeaderSize+8:]))
			for range 64 {
				i := 2*ps + rng.IntN(len(b)-2*ps) // not the meta pages
				b[i] ^= byte(1 + rng.IntN(255))
			}
			writeAt(t, path, 0, b)
		}, ""},
		{"newest meta page damaged", func(t *testing.T, path string) {
			b := readFile(t, path)
			ps := int(ne.Uint32(b[pageHeaderSize+8:]))
			off := int64(newestMeta(t, b)*ps + pageHeaderSize + 40) // the high water mark
			writeAt(t, path, off, []byte{b[off] ^ 0x10})
		}, "meta page"},
		{"older meta page damaged", func(t *testing.T, path string) {
			b := readFile(t, path)
			ps := int(ne.Uint32(b[pageHeaderSize+8:]))
			off := int64((1-newestMeta(t, b))*ps + pageHeaderSize + 3)
			writeAt(t, path, off, []byte{b[off] ^ 0xFF})
		}, "meta page"},
		{"a leaf changed", func(t *testing.T, path string) {
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketLeaves).Put(u64(1234), []byte("forged"))
			}); err != nil {
				t.Fatal(err)
			}
		}, "stored hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := damagedLog(t)
			tt.damage(t, path)
			err := openAndVerify(dir)
			if err == nil {
				t.Fatal("a damaged log was accepted")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q: want ErrCorrupt naming %s and %q", err, path, tt.want)
			}
			t.Log(err)
		})
	}
}

// Without the meta page check, bbolt itself opens a log whose newest
// meta page is damaged and silently serves the batch before the last:
// the loss TestDamagedLogRefused refuses.
func TestBboltFallsBackSilently(t *testing.T) {
	dir, path := damagedLog(t)
	b := readFile(t, path)
	ps := int(ne.Uint32(b[pageHeaderSize+8:]))
	off := int64(newestMeta(t, b)*ps + pageHeaderSize + 40)
	writeAt(t, path, off, []byte{b[off] ^ 0x10})
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var h head
	if err := db.View(func(tx *bolt.Tx) (err error) { h, err = readHead(tx); return err }); err != nil {
		t.Fatal(err)
	}
	if h.size != 2900 {
		t.Fatalf("bbolt read size %d after the fallback, expected the previous batch's 2900", h.size)
	}
	if err := openAndVerify(dir); err == nil {
		t.Fatal("Open accepted it")
	}
}

func TestOpenMissingAndCreateExisting(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), FileName) {
		t.Fatalf("Open of a dir without a log: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Open created log.db")
	}
	l, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Create(dir); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Create over an existing log: %v", err)
	}
}

// A read-only log serves reads and Verify, and refuses appends.
func TestOpenReadOnly(t *testing.T) {
	dir, _ := damagedLog(t)
	l, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	if l.Size() != 3000 {
		t.Fatalf("size %d", l.Size())
	}
	if _, err := l.Append(func(uint64, time.Time) ([][]byte, error) { return [][]byte{{1}}, nil }, t0); err == nil {
		t.Fatal("append to a read-only log")
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Open while a reader holds it: %v", err)
	}
}
