package bench

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// closedLoop keeps cfg.InFlight stamps in flight: each of as many
// workers sends its next stamp when its last one is answered, through
// stampers[worker % len(stampers)]. It runs until the duration or the
// count is reached, the error budget is spent, or ctx ends, and fills in
// res. Its latencies run from each request's send: they measure the
// server at that concurrency, not at a given load.
func (r *runner) closedLoop(ctx context.Context, flow string, res *FlowResult, stampers []stampFunc, duration time.Duration, t *tally) error {
	cfg := r.cfg
	var issued atomic.Uint64
	var wg sync.WaitGroup
	start := time.Now()
	release := t.haltOn(ctx, duration)
	defer release()
	for w := range cfg.InFlight {
		stamp := stampers[w%len(stampers)]
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		wg.Go(func() {
			rng := mrand.NewChaCha8(seed)
			hash := make([]byte, protocol.HashSize)
			for !t.stopped() {
				if n := issued.Add(1); cfg.Count > 0 && n > uint64(cfg.Count) {
					t.halt()
					break
				}
				_, _ = rng.Read(hash)
				sctx, cancel := context.WithTimeout(ctx, cfg.StampTimeout)
				t0 := time.Now()
				st, err := stamp(sctx, hash)
				d := time.Since(t0)
				cancel()
				if err != nil {
					t.fail(err)
					continue
				}
				t.done(hash, st, d)
			}
		})
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t.watch(r, flow, start, done, nil)
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}
	t.fill(res, elapsed)
	r.progress("[%s] done: %d %s in %.1fs, %.0f/s, %d errors", flow, res.Stamps, unit(flow), res.Seconds, res.PerSecond, res.Errors)
	return nil
}
