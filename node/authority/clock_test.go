package authority

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// stepClock is a clock the test sets.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *stepClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// The clock moves through a forward jump and back, a small and a large
// backward step, and a slow catch-up: no stamp is ever dated ahead of
// the clock by more than the tolerance, times never go back, refused
// stamps are not logged, and stamping resumes by itself.
func TestClockSteps(t *testing.T) {
	const tol = 2 * time.Second
	lg := openLog(t, t.TempDir())
	clock := &stepClock{t: logTime}
	a := newAuthority(t, lg, nil, WithClock(clock.now), WithClockTolerance(tol))
	requester := entry(t, "1000")
	tr := trust(t)
	var last time.Time
	i := 0
	stamp := func(step string) (time.Time, error) {
		t.Helper()
		i++
		e := docEntry(requester, i)
		before := lg.Size()
		st, err := await(t, a.Add(context.Background(), e))
		if err != nil {
			if lg.Size() != before {
				t.Fatalf("%s: refused stamp was logged (size %d -> %d)", step, before, lg.Size())
			}
			return time.Time{}, err
		}
		checkStamp(t, lg, tr, st, e)
		got := st.Statement.Time
		if got.Sub(clock.now()) > tol {
			t.Fatalf("%s: stamp dated %v, %v ahead of the clock %v", step, got, got.Sub(clock.now()), clock.now())
		}
		if !got.After(last) {
			t.Fatalf("%s: stamp dated %v, not after the previous %v", step, got, last)
		}
		last = got
		return got, nil
	}
	mustStamp := func(step string, want time.Time) {
		t.Helper()
		got, err := stamp(step)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !want.IsZero() && !got.Equal(want) {
			t.Fatalf("%s: dated %v, want %v", step, got, want)
		}
	}
	mustRefuse := func(step string) {
		t.Helper()
		_, err := stamp(step)
		if !errors.Is(err, ErrClockBehind) {
			t.Fatalf("%s: %v, want ErrClockBehind", step, err)
		}
	}

	mustStamp("calm", logTime)
	ahead := logTime.Add(365 * 24 * time.Hour)
	clock.set(ahead)
	mustStamp("forward jump", ahead)
	clock.set(logTime.Add(time.Second))
	mustRefuse("back after the jump")
	clock.set(ahead.Add(-tol))
	mustRefuse("at the tolerance")
	clock.set(ahead.Add(-tol + time.Nanosecond))
	mustStamp("within the tolerance", ahead.Add(time.Nanosecond))
	// A small backward step is covered by last+1ns.
	clock.set(last.Add(-time.Second))
	mustStamp("small step back", last.Add(time.Nanosecond))
	// A large backward step, then a slow catch-up.
	stepBack := last.Add(-10 * time.Second)
	clock.set(stepBack)
	mustRefuse("large step back")
	for s := stepBack; last.Sub(s) >= tol; s = s.Add(time.Second) {
		clock.set(s)
		mustRefuse("catching up at " + s.Format(time.TimeOnly))
	}
	clock.set(last.Add(-tol + time.Second))
	mustStamp("caught up within the tolerance", last.Add(time.Nanosecond))
	clock.set(last.Add(time.Minute))
	mustStamp("clock ahead again", last.Add(time.Minute))
}

// A server that starts with its clock behind its log's last time starts,
// refuses stamps, and resumes when the clock catches up; the head it
// signs at start keeps the log's time.
func TestClockBehindAtStart(t *testing.T) {
	dir := t.TempDir()
	lg := openLog(t, dir)
	clock := &stepClock{t: logTime}
	a, err := New(lg, serverSigner(t), entry(t, "server"), WithClock(clock.now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := await(t, a.Add(context.Background(), docEntry(entry(t, "1000"), 1))); err != nil {
		t.Fatal(err)
	}
	a.Close()

	clock.set(logTime.Add(-time.Hour))
	a = newAuthority(t, lg, nil, WithClock(clock.now))
	if h := a.Head(); h == nil || !h.Head.Time.Equal(logTime) {
		t.Fatalf("start-up head %+v, want one dated %v", h, logTime)
	}
	_, err = await(t, a.AddDurable(context.Background(), docEntry(entry(t, "1000"), 2)))
	if !errors.Is(err, ErrClockBehind) {
		t.Fatalf("stamp with the clock an hour behind: %v, want ErrClockBehind", err)
	}
	clock.set(logTime)
	st, err := await(t, a.AddDurable(context.Background(), docEntry(entry(t, "1000"), 3)))
	if err != nil {
		t.Fatalf("stamp once the clock caught up: %v", err)
	}
	if st.Statement.Serial != 1 || !st.Statement.Time.Equal(logTime.Add(time.Nanosecond)) {
		t.Fatalf("serial %d at %v, want serial 1 at %v", st.Statement.Serial, st.Statement.Time, logTime.Add(time.Nanosecond))
	}
}
