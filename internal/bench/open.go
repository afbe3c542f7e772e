package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// LateThreshold: a request the open loop sends this long or more after
// its scheduled time counts as late (the load generator fell behind).
const LateThreshold = 10 * time.Millisecond

// OpenLoop is what the open loop did besides stamping.
type OpenLoop struct {
	// Rate is the offered rate (stamps per second, in total), on
	// Schedule ("poisson" or "fixed") from Seed.
	Rate     float64 `json:"rate"`
	Schedule string  `json:"schedule"`
	Seed     uint64  `json:"seed"`
	// Scheduled requests fell within the run's duration and count; Sent
	// were sent; Dropped were not, because MaxOutstanding requests were
	// unanswered at their time. Late were sent LateThreshold or more
	// after their scheduled time.
	Scheduled       uint64  `json:"scheduled"`
	Sent            uint64  `json:"sent"`
	Dropped         uint64  `json:"dropped"`
	Late            uint64  `json:"late"`
	LateThresholdMS float64 `json:"late_threshold_ms"`
	MaxOutstanding  int     `json:"max_outstanding"`
	// PeakOutstanding is the most requests unanswered at once.
	PeakOutstanding int64 `json:"peak_outstanding"`
}

// openLoop sends requests at the times of cfg's schedule, each through
// stampers[i % len(stampers)], whether or not the earlier ones were
// answered, until the schedule passes the duration or the count, the
// error budget is spent, or ctx ends; then it waits for the answers
// (each bounded by cfg.StampTimeout) and fills in res. A request's
// latency runs from its scheduled time, not from its send: a stall of
// the load generator or of the server shows in the latencies instead of
// delaying the requests that would have seen it.
func (r *runner) openLoop(ctx context.Context, flow string, res *FlowResult, stampers []stampFunc, duration time.Duration, t *tally) error {
	cfg := r.cfg
	sched, err := newSchedule(cfg.Schedule, cfg.Rate, cfg.Seed)
	if err != nil {
		return err
	}
	ol := &OpenLoop{Rate: cfg.Rate, Schedule: cfg.Schedule, Seed: cfg.Seed,
		MaxOutstanding: cfg.MaxOutstanding, LateThresholdMS: ms(LateThreshold)}
	var scheduled, sent, dropped, late atomic.Uint64
	var outstanding, peak atomic.Int64
	release := t.haltOn(ctx, 0) // the schedule ends at the duration itself
	defer release()
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	rng := mrand.NewChaCha8(seed)

	var wg sync.WaitGroup
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		defer wg.Wait()
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for i := 0; cfg.Count == 0 || i < cfg.Count; i++ {
			off := sched.next()
			if off >= duration {
				break
			}
			at := start.Add(off)
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-t.stop:
				}
			}
			if t.stopped() {
				break
			}
			scheduled.Add(1)
			if outstanding.Load() >= int64(cfg.MaxOutstanding) {
				dropped.Add(1)
				continue
			}
			if time.Since(at) >= LateThreshold {
				late.Add(1)
			}
			if n := outstanding.Add(1); n > peak.Load() {
				peak.Store(n) // only this goroutine raises it
			}
			sent.Add(1)
			hash := make([]byte, protocol.HashSize)
			_, _ = rng.Read(hash)
			stamp := stampers[i%len(stampers)]
			wg.Go(func() {
				defer outstanding.Add(-1)
				sctx, cancel := context.WithTimeout(ctx, cfg.StampTimeout)
				st, err := stamp(sctx, hash)
				d := time.Since(at)
				cancel()
				if err != nil {
					t.fail(err)
					return
				}
				t.done(hash, st, d)
			})
		}
		if r.scheduleEnd != nil {
			r.scheduleEnd()
		}
	}()
	t.watch(r, flow, start, done, func() string {
		return fmt.Sprintf("  %d outstanding  %d dropped  %d late", outstanding.Load(), dropped.Load(), late.Load())
	})
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}
	t.fill(res, elapsed)
	ol.Scheduled, ol.Sent, ol.Dropped, ol.Late = scheduled.Load(), sent.Load(), dropped.Load(), late.Load()
	ol.PeakOutstanding = peak.Load()
	res.Open = ol
	res.Offered = ptr(cfg.Rate)
	r.progress("[%s] done: %d %s in %.1fs, %.0f/s offered, %.0f/s achieved, %d dropped, %d late, %d errors",
		flow, res.Stamps, unit(flow), res.Seconds, cfg.Rate, res.PerSecond, ol.Dropped, ol.Late, res.Errors)
	return nil
}
