package merklelog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A backup opens and verifies as a log of the same size and root,
// whichever the parity of the transaction it was taken in (Tx.WriteTo's
// meta pages are fixed for checkFile), and a write error is returned.
func TestBackup(t *testing.T) {
	l := openT(t, filepath.Join(t.TempDir(), "log"))
	defer l.Close()
	for i := range 4 {
		if _, err := l.Append(func(uint64, time.Time) ([][]byte, error) { return [][]byte{{byte(i)}, {byte(i), 1}}, nil }, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		size, err := l.Backup(&buf)
		if err != nil || size != uint64(2*i+2) {
			t.Fatalf("backup %d: size %d, %v", i, size, err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Open(dir)
		if err != nil {
			t.Fatalf("backup %d does not open: %v", i, err)
		}
		if err := c.Verify(); err != nil {
			t.Fatal(err)
		}
		gotSize, gotRoot, _, _ := c.Root()
		wantSize, wantRoot, _, _ := l.Root()
		c.Close()
		if gotSize != wantSize || gotRoot != wantRoot {
			t.Fatalf("backup %d: size %d root %x, want %d %x", i, gotSize, gotRoot, wantSize, wantRoot)
		}
	}
	boom := errors.New("disk full")
	// bbolt wraps the error as text.
	if _, err := l.Backup(failingWriter{boom}); err == nil || !strings.Contains(err.Error(), boom.Error()) {
		t.Fatalf("backup onto a failing writer: %v", err)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }
