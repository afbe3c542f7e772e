package merklelog

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzOpen's seeds")

// smallLog returns the bytes of a closed log of 10 leaves in 2 batches.
func smallLog(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	l := openT(tb, dir)
	for i := range 2 {
		appendN(tb, l, 5, t0.Add(time.Duration(i)*time.Second), "f")
	}
	l.Close()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestWriteFuzzCorpus rewrites the seed corpus with -update-corpus: a
// small valid log and cuts of it.
func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seeds")
	}
	b := smallLog(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, seed := range map[string][]byte{
		"valid":         b,
		"last-page-cut": b[:len(b)-4096],
		"two-pages":     b[:8192],
		"empty":         {},
	} {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzOpen opens arbitrary bytes as log.db: it must never panic, fault
// or hang, and a log that opens must answer reads and Verify without
// panicking either.
func FuzzOpen(f *testing.F) {
	f.Add(smallLog(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(dir)
		if err != nil {
			return // refused: fine, as long as nothing panicked
		}
		defer l.Close()
		size, root, _, err := l.Root()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Verify(); err != nil {
			return // damage found: fine, as long as nothing panicked
		}
		if size > 0 {
			if got, err := l.TreeHash(size); err != nil || got != root {
				t.Fatalf("TreeHash(%d) = %v, %v after Verify, want %v", size, got, err, root)
			}
			if _, err := l.InclusionProof(size-1, size); err != nil {
				t.Fatalf("InclusionProof after Verify: %v", err)
			}
			if _, err := l.Leaf(0); err != nil {
				t.Fatalf("Leaf after Verify: %v", err)
			}
		}
	})
}
