package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Benchmarks of the whole flow on real libp2p hosts on 127.0.0.1: server,
// verifier and requester in one process, sharing the machine's cores.
//
//	go test -run '^$' -bench . -benchtime 20x ./node/

// BenchmarkStampAndRelay times one document (1 KiB) through the requester:
// hash, stamp on the open session, check, write the receipt, relay,
// verdict. It reports the median and p95 of the iterations.
func BenchmarkStampAndRelay(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			s := startSwarm(b, tr.listen)
			r := s.requester(b, b.TempDir())
			doc := writeDoc(b, b.TempDir(), "doc.txt", make([]byte, 1024))
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				res := r.Process(context.Background(), doc)
				took = append(took, time.Since(start))
				if !res.OK() {
					b.Fatalf("%v (verdict %v)", res.Err, res.Verdict)
				}
			}
			slices.Sort(took)
			b.ReportMetric(ms(took[len(took)/2]), "ms-p50")
			b.ReportMetric(ms(took[len(took)*95/100]), "ms-p95")
		})
	}
}

// BenchmarkRequester100Files is the requester on 100 files over one
// connection to each peer, as `tsnode --role requester --file ...` runs
// them, one document at a time and DefaultParallel at a time; it reports
// documents per second.
func BenchmarkRequester100Files(b *testing.B) {
	for _, tr := range transports {
		for _, parallel := range []int{1, DefaultParallel} {
			b.Run(fmt.Sprintf("%s/parallel=%d", tr.name, parallel), func(b *testing.B) {
				benchmarkRequester100Files(b, tr.listen, parallel)
			})
		}
	}
}

func benchmarkRequester100Files(b *testing.B, listen string, parallel int) {
	s := startSwarm(b, listen)
	r := s.requester(b, b.TempDir())
	r.parallel = parallel
	docs := b.TempDir()
	var paths []string
	for i := range 100 {
		paths = append(paths, writeDoc(b, docs, fmt.Sprintf("doc-%03d.txt", i), fmt.Appendf(nil, "document %d\n", i)))
	}
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		for _, res := range r.ProcessAll(context.Background(), paths, 0, nil) {
			if !res.OK() {
				b.Fatalf("%s: %v (verdict %v)", res.Path, res.Err, res.Verdict)
			}
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(len(paths)*b.N)/elapsed.Seconds(), "docs/s")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
