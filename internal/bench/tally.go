package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// tally is what the closed and the open loop share: the stop signal, the
// error budget, the checked stamps with their latencies and tree heads,
// and the progress line.
type tally struct {
	cfg   *Config
	trust *protocol.Trust
	cache *protocol.HeadCache

	ok, reverified, failed atomic.Uint64
	firstErr               atomic.Pointer[string]

	stop     chan struct{}
	stopOnce sync.Once

	mu    sync.Mutex
	lat   []time.Duration
	heads map[uint64]struct{}
}

func newTally(cfg *Config, trust *protocol.Trust, cache *protocol.HeadCache) *tally {
	return &tally{cfg: cfg, trust: trust, cache: cache, stop: make(chan struct{}), heads: map[uint64]struct{}{}}
}

// halt tells the loop to stop issuing stamps.
func (t *tally) halt() { t.stopOnce.Do(func() { close(t.stop) }) }

func (t *tally) stopped() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}

// haltOn halts the loop when ctx ends or after d; call the returned
// function once the loop is over.
func (t *tally) haltOn(ctx context.Context, d time.Duration) (release func()) {
	var timer *time.Timer
	if d > 0 {
		timer = time.AfterFunc(d, t.halt)
	}
	over := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			t.halt()
		case <-t.stop:
		case <-over:
		}
	}()
	return func() {
		if timer != nil {
			timer.Stop()
		}
		close(over)
	}
}

// fail counts a failed stamp, and halts the loop once the error budget
// is spent.
func (t *tally) fail(err error) {
	s := err.Error()
	t.firstErr.CompareAndSwap(nil, &s)
	if t.failed.Add(1) > uint64(t.cfg.MaxErrors) {
		t.halt()
	}
}

// done counts a checked stamp (or token) of hash that took d, and
// re-verifies every Reverify-th stamp as a receipt.
func (t *tally) done(hash []byte, st stamped, d time.Duration) {
	n := t.ok.Add(1)
	t.mu.Lock()
	t.lat = append(t.lat, d)
	if st.head != 0 {
		t.heads[st.head] = struct{}{}
	}
	t.mu.Unlock()
	if st.reverified {
		t.reverified.Add(1)
	}
	if st.receipt != nil && t.cfg.Reverify > 0 && n%uint64(t.cfg.Reverify) == 0 {
		if _, err := st.receipt().VerifyCached(t.trust, hash, t.cache); err != nil {
			t.fail(fmt.Errorf("receipt does not verify: %w", err))
			return
		}
		t.reverified.Add(1)
	}
}

// watch prints a progress line every second until done is closed; extra,
// if not nil, adds to the line.
func (t *tally) watch(r *runner, flow string, start time.Time, done <-chan struct{}, extra func() string) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastT := uint64(0), start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			n := t.ok.Load()
			rate := float64(n-last) / now.Sub(lastT).Seconds()
			last, lastT = n, now
			more := ""
			if extra != nil {
				more = extra()
			}
			r.progress("[%s] %5.1fs  %d %s  %.0f/s  %d errors%s", flow, now.Sub(start).Seconds(), n, unit(flow), rate, t.failed.Load(), more)
		}
	}
}

// fill writes the counts and latencies into res; elapsed is the loop's
// wall time.
func (t *tally) fill(res *FlowResult, elapsed time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res.Stamps = t.ok.Load()
	if len(t.heads) > 0 {
		res.TreeHeads = uint64(len(t.heads))
		res.StampsPerHead = float64(res.Stamps) / float64(len(t.heads))
	}
	res.Reverified = t.reverified.Load()
	res.Errors = t.failed.Load()
	if p := t.firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(res.Stamps) / elapsed.Seconds()
	res.Latency = Summarize(t.lat)
}
