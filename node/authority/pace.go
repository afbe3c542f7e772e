package authority

import (
	"math"
	"time"
)

// Pacing: a tree head costs one RSA signature (about 10 ms of CPU for
// RSA-4096), whatever the number of stamps it covers, so signing back to
// back burns a core at any load. The pacer signs when the previous
// signature is done and
//
//  1. the pending stamps are worth a signature: K = signature time /
//     signBudget of them; or
//  2. the oldest waiting stamp has waited MaxWait; or
//  3. no stamp arrived during the previous signature nor for quietGap
//     since, and none is being appended: the requesters all wait for
//     answers (a lone stamp, a closed loop), so nothing more will come;
//     or
//  4. at the recent arrival rate λ, waiting until MaxWait would not be
//     expected to bring even one more stamp.
//
// Under a steady stream (3 and 4 do not hold) a head therefore waits for
// K stamps or MaxWait; the CPU per stamp is about a signature over
// λ·MaxWait stamps and the latency about MaxWait/2 plus a signature. Rule
// 3 is the hysteresis of closed loops: only a signature during which
// nothing arrived enables it, so the bursts of replies that a closed
// loop answers with cannot flip it between waiting and not.
//
// Leaves that nobody waits for (AddDurable) are signed with the next
// head, or after durableCover.

// state is what the pacer decides on.
type state struct {
	now       time.Time
	stamps    int       // appended stamps waiting for a head
	oldest    time.Time // Add time of the oldest stamp of Add waiting; zero if none
	oldestAny time.Time // Add time of the oldest appended stamp
	appending bool      // stamps added are not appended yet
	ready     time.Time // when the previous signature ended (zero: none yet)
	lastAdd   time.Time // time of the last Add
}

// pacer holds what the pacing rule learns: the signature time, the
// arrival rate and whether stamps arrived during the last signature. It
// is used by the pacing goroutine only.
type pacer struct {
	maxWait  time.Duration
	maxBatch int
	signTime time.Duration // running average
	rate     float64       // stamps/s at rateAt, an exponentially decaying count
	rateAt   time.Time
	quiet    bool // nothing arrived during the last signature
}

func newPacer(maxWait time.Duration, maxBatch int, signTime time.Duration) *pacer {
	return &pacer{maxWait: maxWait, maxBatch: maxBatch, signTime: signTime, quiet: true}
}

// worth is K, the stamps a head is worth signing for at once.
func (p *pacer) worth() int {
	return min(max(int(p.signTime/signBudget), 1), p.maxBatch)
}

// observe counts n stamps added by t.
func (p *pacer) observe(n int, t time.Time) {
	p.rate = p.rateNow(t) + float64(n)/rateWindow.Seconds()
	if t.After(p.rateAt) {
		p.rateAt = t
	}
}

// rateNow is the arrival rate estimate at t: each stamp counts 1/τ,
// decaying with time constant τ = rateWindow.
func (p *pacer) rateNow(t time.Time) float64 {
	if d := t.Sub(p.rateAt); d > 0 {
		return p.rate * math.Exp(-d.Seconds()/rateWindow.Seconds())
	}
	return p.rate
}

// signed records a signature of duration d, and whether no stamp
// arrived during it.
func (p *pacer) signed(d time.Duration, quiet bool) {
	if p.signTime == 0 {
		p.signTime = d
	} else {
		p.signTime += (d - p.signTime) / 8
	}
	p.quiet = quiet
}

// appendWaitMax bounds a wait for an append in progress: about an fsync.
const appendWaitMax = 2 * time.Millisecond

// minWait keeps a wait from spinning on a deadline that has just passed.
const minWait = 50 * time.Microsecond

// decide says whether to sign now, or else how long to wait at most
// before deciding again (a newly appended batch also wakes the caller).
func (p *pacer) decide(s state) (bool, time.Duration) {
	if s.stamps >= p.worth() {
		return true, 0
	}
	if s.oldest.IsZero() { // only leaves nobody waits for
		left := s.oldestAny.Add(durableCover).Sub(s.now)
		return left <= 0, max(left, minWait)
	}
	left := p.maxWait - s.now.Sub(s.oldest)
	if s.appending {
		// A batch is being appended: its stamps would otherwise wait a
		// whole signature for the next head, and an append takes about an
		// fsync; so wait for it, up to appendWaitMax after the previous
		// signature ended (under a steady stream something is always
		// being appended).
		if w := appendWaitMax - s.now.Sub(s.ready); w > 0 {
			return false, max(w, minWait)
		}
	}
	if left <= 0 {
		return true, 0
	}
	wait := left
	if p.quiet {
		q := quietGap - s.now.Sub(s.lastAdd)
		if q <= 0 {
			return true, 0
		}
		wait = min(wait, q)
	}
	rate := p.rateNow(s.now)
	if rate*left.Seconds() < 1 {
		return true, 0
	}
	// Rule 4 holds, at this rate, once less than 1/λ is left.
	wait = min(wait, left-time.Duration(float64(time.Second)/rate))
	return false, max(wait, minWait)
}
