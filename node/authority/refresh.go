package authority

import (
	"context"
	"errors"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// A fresh head (PROTOCOL.md §13.2): when the log does not grow, the
// authority signs the head of the same tree again, dated now, so that
// witnesses can tell a live authority from a stalled one. It is signed in
// the pacer's goroutine, in order with every other head, and only when
// the pipeline holds no stamp: a head is never followed by one dated
// earlier. Stamps appended after it are dated after it (floor).

// ErrBusy is Refresh's answer while stamps are in the pipeline: their head
// is about to come anyway.
var ErrBusy = errors.New("authority: stamps in progress; their head comes next")

type refreshReq struct {
	done chan struct{}
	sth  *protocol.SignedTreeHead
	err  error
}

// Refresh signs, guards and returns a head of the current tree dated now
// (at least after the latest head), or fails with ErrBusy while stamps
// are in progress. On an empty log it returns nil, nil.
func (a *Authority) Refresh(ctx context.Context) (*protocol.SignedTreeHead, error) {
	r := &refreshReq{done: make(chan struct{})}
	select {
	case a.refresh <- r:
	case <-a.stopped:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
		return r.sth, r.err
	case <-a.stopped:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refreshHead is the pacer's side of Refresh, called with nothing
// pending; seen is how many requests the pacer has received. It raises
// the floor first, so that a stamp the appender dates after the check
// below is dated after the fresh head.
func (a *Authority) refreshHead(r *refreshReq, seen int64) {
	// Not a.head: the deliverer may not have stored the last head the
	// pacer signed yet, and a fresh head of an older tree would come
	// after it, as if the log had shrunk.
	prev := a.lastSigned
	if prev == nil {
		r.err = nil
		close(r.done)
		return
	}
	t := a.now().UTC()
	if !t.After(prev.Head.Time) {
		t = prev.Head.Time.Add(time.Nanosecond)
	}
	a.raiseFloor(t)
	if a.added.Load() != seen {
		r.err = ErrBusy
		close(r.done)
		return
	}
	g := &group{size: prev.Head.Size, root: prev.Head.Root, time: prev.Head.Time, signed: make(chan struct{})}
	g.sth, g.err = a.sign(prev.Head.Size, prev.Head.Root, t)
	if g.err == nil {
		a.lastSigned = g.sth
	}
	close(g.signed)
	g.refreshed = r
	a.groups <- g
}

// raiseFloor makes t the earliest time the appender may date a batch.
func (a *Authority) raiseFloor(t time.Time) {
	for {
		old := a.floor.Load()
		if old >= t.UnixNano() || a.floor.CompareAndSwap(old, t.UnixNano()) {
			return
		}
	}
}

// dated is now, moved after the floor if needed.
func (a *Authority) dated(now time.Time) time.Time {
	if f := a.floor.Load(); f != 0 && now.UnixNano() <= f {
		return time.Unix(0, f+1).UTC()
	}
	return now
}
