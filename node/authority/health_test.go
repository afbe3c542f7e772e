package authority

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// metricsRecorder counts what the pipeline reports.
type metricsRecorder struct{ appends, heads, stamps, saves atomic.Int64 }

func (r *metricsRecorder) Appended(n int, _ time.Duration)   { r.appends.Add(1) }
func (r *metricsRecorder) HeadSigned(n int, _ time.Duration) { r.heads.Add(1); r.stamps.Add(int64(n)) }
func (r *metricsRecorder) HeadSaved(time.Duration)           { r.saves.Add(1) }

// TestLagAndErrFollowAStuckHeadStore: while the head store blocks, the
// stamp waits and Lag is above 0; a failing save shows in Err until a
// save succeeds; the metrics see each stage.
func TestLagAndErrFollowAStuckHeadStore(t *testing.T) {
	release := make(chan error)
	var blocking atomic.Bool
	guard := func(uint64) error {
		if blocking.Load() {
			return <-release
		}
		return nil
	}
	rec := &metricsRecorder{}
	a := newAuthority(t, openLog(t, t.TempDir()), nil, WithHeadStore(testStore{guard: guard}), WithMetrics(rec))
	if err := a.CheckLag(0); err != nil || a.Err() != nil {
		t.Fatalf("idle: lag %v, err %v", err, a.Err())
	}
	blocking.Store(true)
	f := a.Add(context.Background(), docEntry(entry(t, "1000"), 1))
	// The stamp is stuck behind the save: it waits, unanswered.
	for a.Lag() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := a.CheckLag(0); err == nil || !errors.Is(err, errLagging) {
		t.Fatalf("stuck: CheckLag(0) = %v", err)
	}
	release <- errors.New("disk full")
	if _, err := await(t, f); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("stamp of an unsaved head: %v", err)
	}
	if err := a.CheckLag(0); err != nil {
		t.Fatalf("answered: %v", err)
	}
	if err := a.Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Err after a failed save: %v", err)
	}
	blocking.Store(false)
	if _, err := await(t, a.Add(context.Background(), docEntry(entry(t, "1000"), 2))); err != nil {
		t.Fatal(err)
	}
	if err := a.Err(); err != nil {
		t.Fatalf("Err after a saved head: %v", err)
	}
	if rec.appends.Load() != 2 || rec.heads.Load() != 2 || rec.stamps.Load() != 2 || rec.saves.Load() != 1 {
		t.Fatalf("metrics: %d appends, %d heads over %d stamps, %d saves; want 2, 2, 2, 1",
			rec.appends.Load(), rec.heads.Load(), rec.stamps.Load(), rec.saves.Load())
	}
	a.Close()
	if !errors.Is(a.Err(), ErrClosed) {
		t.Fatalf("Err after Close: %v", a.Err())
	}
}
