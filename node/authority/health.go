package authority

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// health is what Err and Lag read: the last failures of the pipeline's
// stages, and how far answers trail the stamps added.
type health struct {
	appendErr atomic.Pointer[error] // the last append's failure; nil after a success
	headErr   atomic.Pointer[error] // the last head's signature or save failure; nil after a saved head
	// Stamps answered (of those queued), and when the last were and when
	// the pipeline last went from idle to busy, in ns since start.
	answered   atomic.Int64
	lastAnswer atomic.Int64
	busySince  atomic.Int64
}

// answered counts n queued stamps answered now.
func (a *Authority) answered(n int) {
	if n == 0 {
		return
	}
	a.health.lastAnswer.Store(int64(time.Since(a.start)))
	a.health.answered.Add(int64(n))
}

// Err says why the authority cannot stamp now, or nil: it is closed, the
// clock is behind the last issued time (ErrClockBehind), or the last
// append, signature or head save failed (until one succeeds again).
func (a *Authority) Err() error {
	a.mu.RLock()
	closed := a.closed
	a.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if _, _, last, err := a.log.Root(); err != nil {
		return err
	} else if !last.IsZero() && last.Sub(a.now()) >= a.tolerance {
		return fmt.Errorf("%w (%s); stamping is paused", ErrClockBehind, protocol.FormatTime(last))
	}
	if e := a.health.appendErr.Load(); e != nil {
		return *e
	}
	if e := a.health.headErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Lag is how long the stamps waiting for an answer have gone without one:
// 0 when none waits, else the time since the last answer or since the
// pipeline became busy, whichever is later. A signer that keeps up keeps
// it near a signature's time.
func (a *Authority) Lag() time.Duration {
	if a.added.Load() <= a.health.answered.Load() {
		return 0
	}
	since := max(a.health.lastAnswer.Load(), a.health.busySince.Load())
	return max(time.Since(a.start)-time.Duration(since), 0)
}

// errLagging is Lag over its bound, for readiness checks.
var errLagging = errors.New("the signer is not keeping up")

// CheckLag returns an error when Lag exceeds bound.
func (a *Authority) CheckLag(bound time.Duration) error {
	if lag := a.Lag(); lag > bound {
		return fmt.Errorf("%w: the stamps waiting have had no answer for %v (bound %v)", errLagging, lag.Round(time.Millisecond), bound)
	}
	return nil
}
