package merklelog

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkStartChecks measures what a server's start costs on a log of
// TSNODE_BENCH_CHECK_STAMPS stamps (default 1,000,000) of ~200 bytes in
// 4096-stamp batches: Open (checkFile: every page of the file read once)
// and VerifyFrom over the last StartCheckLeaves (what a server checks at
// start), and Verify (every stored hash recomputed: tsnode log check).
// Building the log is not timed.
//
//	go test -run '^$' -bench StartChecks -benchtime 1x ./internal/merklelog/
func BenchmarkStartChecks(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("TSNODE_BENCH_CHECK_STAMPS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	l := openT(b, dir)
	for first := 0; first < n; first += 4096 {
		if _, err := l.Append(func(f uint64, t time.Time) ([][]byte, error) {
			leaves := make([][]byte, min(4096, n-first))
			for i := range leaves {
				leaf := mkLeaf(f+uint64(i), t, "bench")
				for len(leaf) < 200 {
					leaf = append(leaf, '.')
				}
				leaves[i] = leaf
			}
			return leaves, nil
		}, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	st, _ := os.Stat(filepath.Join(dir, FileName))
	b.Logf("log.db: %d stamps, %d MiB", n, st.Size()>>20)
	var open, verify, full time.Duration
	for b.Loop() {
		t0 := time.Now()
		l, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := l.VerifyFrom(uint64(max(n-StartCheckLeaves, 0))); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := l.Verify(); err != nil {
			b.Fatal(err)
		}
		open, verify, full = open+t1.Sub(t0), verify+t2.Sub(t1), full+time.Since(t2)
		l.Close()
	}
	b.ReportMetric(open.Seconds()/float64(b.N), "open-s")
	b.ReportMetric(verify.Seconds()/float64(b.N), "verify-last-s")
	b.ReportMetric(full.Seconds()/float64(b.N), "verify-all-s")
}
