package merklelog

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkAppend measures durable appends of 256-leaf batches of ~200
// bytes; one op is one batch (one bbolt commit, one fsync).
func BenchmarkAppend(b *testing.B) {
	const batch, leafSize = 256, 200
	l := openT(b, b.TempDir())
	defer l.Close()
	build := func(first uint64, t time.Time) ([][]byte, error) {
		leaves := make([][]byte, batch)
		for i := range leaves {
			leaf := mkLeaf(first+uint64(i), t, "bench")
			for len(leaf) < leafSize {
				leaf = append(leaf, '.')
			}
			leaves[i] = leaf
		}
		return leaves, nil
	}
	ops := 0
	for b.Loop() {
		if _, err := l.Append(build, time.Now()); err != nil {
			b.Fatal(err)
		}
		ops++
	}
	b.ReportMetric(float64(ops*batch)/b.Elapsed().Seconds(), "leaves/s")
}

// BenchmarkInclusionProof measures proof generation in a 100k-leaf log.
func BenchmarkInclusionProof(b *testing.B) {
	l := openT(b, b.TempDir())
	defer l.Close()
	for range 100 {
		appendN(b, l, 1000, t0, "p")
	}
	size := l.Size()
	i := uint64(0)
	for b.Loop() {
		if _, err := l.InclusionProof(i%size, size); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// TestHeapBounded appends 200k leaves in batches of 1000 and checks that
// the live heap does not grow with the log: nothing but the head is kept
// in memory, hashes live in the bbolt file (mmap, not Go heap).
func TestHeapBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 200k leaves")
	}
	l := openT(t, t.TempDir())
	defer l.Close()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	var at50k uint64
	for l.Size() < 200_000 {
		appendN(t, l, 1000, t0, "heap-test-padding-padding-padding-padding-padding")
		if l.Size() == 50_000 {
			at50k = heap()
		}
	}
	// Touch old and new parts of the tree, as a server answering proofs would.
	for _, i := range []uint64{0, 49_999, 123_456, 199_999} {
		if _, err := l.InclusionProof(i, l.Size()); err != nil {
			t.Fatal(err)
		}
	}
	at200k := heap()
	t.Logf("HeapInuse after GC: %d KiB at 50k leaves, %d KiB at 200k leaves", at50k>>10, at200k>>10)
	const slack = 4 << 20
	if at200k > 2*at50k+slack {
		t.Errorf("heap grew from %d to %d bytes between 50k and 200k leaves", at50k, at200k)
	}
}

// BenchmarkRSSLongLog grows one log to 5M leaves of 270 bytes (a stamp
// leaf's size) in batches of 128 (about what one tree head covers at
// 256 stamps in flight), proving the inclusion of every batch's leaves
// as the server does, and reports the process's resident and anonymous
// memory and live heap at 1M and 5M leaves. It takes about a minute and
// 2 GB of disk, so it runs only when asked:
//
//	go test -run '^$' -bench RSSLongLog -benchtime 1x ./internal/merklelog/
func BenchmarkRSSLongLog(b *testing.B) {
	const batch, leafSize, first, last = 128, 270, 1_000_000, 5_000_000
	for b.Loop() {
		l := openT(b, b.TempDir())
		build := func(start uint64, t time.Time) ([][]byte, error) {
			leaves := make([][]byte, batch)
			for i := range leaves {
				leaf := mkLeaf(start+uint64(i), t, "rss")
				leaves[i] = append(leaf, make([]byte, leafSize-len(leaf))...)
			}
			return leaves, nil
		}
		var at1M memory
		for l.Size() < last {
			bt, err := l.Append(build, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.InclusionProofs(bt.FirstIndex, batch, bt.Size); err != nil {
				b.Fatal(err)
			}
			if at1M.rss == 0 && l.Size() >= first {
				at1M = measureMemory(b)
			}
		}
		at5M := measureMemory(b)
		for _, m := range []struct {
			name string
			v    uint64
		}{
			{"MiB-rss-at-1M", at1M.rss}, {"MiB-rss-at-5M", at5M.rss},
			{"MiB-anon-at-1M", at1M.anon}, {"MiB-anon-at-5M", at5M.anon},
			{"MiB-heap-at-1M", at1M.heap}, {"MiB-heap-at-5M", at5M.heap},
		} {
			b.ReportMetric(float64(m.v)/(1<<20), m.name)
		}
		l.Close()
	}
}

type memory struct{ rss, anon, heap uint64 }

// measureMemory returns VmRSS and RssAnon of this process and the Go
// heap in use, after returning freed heap to the OS, so that what the
// runtime keeps only out of laziness does not count. RssAnon leaves out
// the pages of bbolt's memory-mapped file, which the kernel may drop at
// will.
func measureMemory(tb testing.TB) memory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memory{heap: ms.HeapInuse}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		for prefix, dst := range map[string]*uint64{"VmRSS:": &m.rss, "RssAnon:": &m.anon} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					tb.Fatal(err)
				}
				*dst = kb << 10
			}
		}
	}
	if m.rss == 0 || m.anon == 0 {
		tb.Fatal("no VmRSS or RssAnon in /proc/self/status")
	}
	return m
}
