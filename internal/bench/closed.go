package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"tsnode/protocol"
)

// drive runs the workers until the duration or the count is reached, the
// error budget is spent, or ctx ends, and fills in res.
func (r *runner) drive(ctx context.Context, flow string, res *FlowResult, workers []stampFunc, duration time.Duration, cache *protocol.HeadCache) error {
	cfg := r.cfg
	var (
		issued, ok, reverified, failed atomic.Uint64
		firstErr                       atomic.Pointer[string]
		stopOnce                       sync.Once
		stop                           = make(chan struct{})
	)
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	record := func(err error) {
		s := err.Error()
		firstErr.CompareAndSwap(nil, &s)
		if failed.Add(1) > uint64(cfg.MaxErrors) {
			halt()
		}
	}

	lat := make([][]time.Duration, len(workers))
	heads := make([]map[uint64]struct{}, len(workers))
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.AfterFunc(duration, halt)
	defer timer.Stop()
	go func() {
		select {
		case <-ctx.Done():
			halt()
		case <-stop:
		}
	}()
	for w, stamp := range workers {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		wg.Go(func() {
			rng := mrand.NewChaCha8(seed)
			hash := make([]byte, protocol.HashSize)
			mine := make([]time.Duration, 0, 1024)
			myHeads := map[uint64]struct{}{}
			for !stopped() {
				if n := issued.Add(1); cfg.Count > 0 && n > uint64(cfg.Count) {
					halt()
					break
				}
				_, _ = rng.Read(hash)
				sctx, cancel := context.WithTimeout(ctx, cfg.StampTimeout)
				t0 := time.Now()
				st, err := stamp(sctx, hash)
				d := time.Since(t0)
				cancel()
				if err != nil {
					record(err)
					continue
				}
				n := ok.Add(1)
				mine = append(mine, d)
				if st.head != 0 {
					myHeads[st.head] = struct{}{}
				}
				if cfg.Reverify > 0 && n%uint64(cfg.Reverify) == 0 {
					if _, err := st.receipt().VerifyCached(r.trust, hash, cache); err != nil {
						record(fmt.Errorf("receipt does not verify: %w", err))
						continue
					}
					reverified.Add(1)
				}
			}
			lat[w], heads[w] = mine, myHeads
		})
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastT := uint64(0), start
loop:
	for {
		select {
		case <-done:
			break loop
		case now := <-tick.C:
			n := ok.Load()
			rate := float64(n-last) / now.Sub(lastT).Seconds()
			last, lastT = n, now
			r.progress("[%s] %5.1fs  %d stamps  %.0f/s  %d errors", flow, now.Sub(start).Seconds(), n, rate, failed.Load())
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}

	all := make([]time.Duration, 0, ok.Load())
	for _, l := range lat {
		all = append(all, l...)
	}
	distinct := map[uint64]struct{}{}
	for _, h := range heads {
		for size := range h {
			distinct[size] = struct{}{}
		}
	}
	if len(distinct) > 0 {
		res.TreeHeads = uint64(len(distinct))
		res.StampsPerHead = float64(ok.Load()) / float64(len(distinct))
	}
	res.Stamps = ok.Load()
	res.Reverified = reverified.Load()
	res.Errors = failed.Load()
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(res.Stamps) / elapsed.Seconds()
	res.Latency = Summarize(all)
	r.progress("[%s] done: %d stamps in %.1fs, %.0f/s, %d errors", flow, res.Stamps, res.Seconds, res.PerSecond, res.Errors)
	return nil
}
