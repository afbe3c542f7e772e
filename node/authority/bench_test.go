package authority

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/logstore"
)

// Benchmarks of the whole pipeline, in process, with a real merklelog in
// t.TempDir() and real RSA-4096 signatures. (An A/B of two builds' whole
// servers: scripts/bench-ab.sh.) Each runs for benchDuration
// whatever b.N; run them once:
//
//	go test -run '^$' -bench . -benchtime 1x ./node/authority/
//
// Metrics: cpu-µs/stamp (getrusage of the whole process over the run,
// generator included), p50-ms and p99-ms latency (open loop: from each
// stamp's scheduled time, so a backlog counts), stamps/head, stamps/s.
const benchDuration = 3 * time.Second

// stamper is what both pipelines offer a benchmark: submit a stamp, get
// its head size (or an error) through done, from one goroutine at a
// time per pipeline.
type stamper interface {
	submit(e Entry, done func(headSize uint64, err error))
	close()
}

type newStamper struct {
	a       *Authority
	futures chan func()
	wg      sync.WaitGroup
}

func newNew(b *testing.B) stamper {
	// Each head's tree is guarded as a server guards it (the guard file,
	// pwrite and fdatasync) before its stamps are answered.
	dir := b.TempDir()
	lg, store, err := logstore.Open(dir, "server", trust(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lg.Close() })
	s := &newStamper{a: newAuthority(b, lg, nil, WithHeadStore(store)), futures: make(chan func(), 1<<16)}
	// One goroutine waits on the futures one by one: they resolve in Add
	// order, as a session server would use them.
	s.wg.Go(func() {
		for f := range s.futures {
			f()
		}
	})
	return s
}

func (s *newStamper) submit(e Entry, done func(uint64, error)) {
	f := s.a.Add(context.Background(), e)
	s.futures <- func() {
		st, err := f()
		if err != nil {
			done(0, err)
			return
		}
		done(st.Head.Head.Size, nil)
	}
}

func (s *newStamper) close() { close(s.futures); s.wg.Wait(); s.a.Close() }

var pipelines = []struct {
	name string
	make func(*testing.B) stamper
}{{"authority", newNew}}

// recorder collects latencies and head sizes.
type recorder struct {
	mu    sync.Mutex
	lat   []time.Duration
	heads map[uint64]bool
	errs  int
}

func (r *recorder) done(sched time.Time) func(uint64, error) {
	return func(size uint64, err error) {
		d := time.Since(sched)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.errs++
			return
		}
		r.lat = append(r.lat, d)
		r.heads[size] = true
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *recorder) report(b *testing.B, cpu, wall time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs > 0 {
		b.Fatalf("%d stamps failed", r.errs)
	}
	n := len(r.lat)
	if n == 0 {
		b.Fatal("no stamps")
	}
	slices.Sort(r.lat)
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/stamp")
	b.ReportMetric(float64(r.lat[n/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.lat[n*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(n)/float64(len(r.heads)), "stamps/head")
	b.ReportMetric(float64(n)/wall.Seconds(), "stamps/s")
	b.ReportMetric(0, "ns/op")
}

func requesters(b *testing.B) []identity.Entry {
	return []identity.Entry{entry(b, "1000"), entry(b, "2000")}
}

// BenchmarkOpenLoop offers stamps at a fixed rate on a fixed schedule.
func BenchmarkOpenLoop(b *testing.B) {
	for _, rate := range []int{1000, 8000, 16000, 24000} {
		for _, p := range pipelines {
			b.Run(fmt.Sprintf("%s/rate=%d", p.name, rate), func(b *testing.B) {
				reqs := requesters(b)
				for b.Loop() {
					s := p.make(b)
					r := &recorder{heads: map[uint64]bool{}}
					cpu0, start := cpuTime(b), time.Now()
					total := int(benchDuration.Seconds() * float64(rate))
					interval := time.Second / time.Duration(rate)
					for i := 0; i < total; {
						due := min(int(time.Since(start)/interval)+1, total)
						for ; i < due; i++ {
							s.submit(docEntry(reqs[i%2], i), r.done(start.Add(time.Duration(i)*interval)))
						}
						time.Sleep(200 * time.Microsecond)
					}
					s.close()
					r.report(b, cpuTime(b)-cpu0, time.Since(start))
				}
			})
		}
	}
}

// BenchmarkClosedLoop keeps a fixed number of stamps in flight.
func BenchmarkClosedLoop(b *testing.B) {
	for _, inflight := range []int{1, 8, 32, 128, 256} {
		for _, p := range pipelines {
			b.Run(fmt.Sprintf("%s/inflight=%d", p.name, inflight), func(b *testing.B) {
				reqs := requesters(b)
				for b.Loop() {
					s := p.make(b)
					r := &recorder{heads: map[uint64]bool{}}
					cpu0, start := cpuTime(b), time.Now()
					var wg sync.WaitGroup
					for w := range inflight {
						wg.Go(func() {
							ch := make(chan struct{}, 1)
							for i := 0; time.Since(start) < benchDuration; i++ {
								done := r.done(time.Now())
								s.submit(docEntry(reqs[w%2], w<<20|i), func(size uint64, err error) {
									done(size, err)
									ch <- struct{}{}
								})
								<-ch
							}
						})
					}
					wg.Wait()
					s.close()
					r.report(b, cpuTime(b)-cpu0, time.Since(start))
				}
			})
		}
	}
}
