package authority

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// TestRefresh: a fresh head is of the same tree, dated after the last
// one, saved and returned by Head; a stamp after it is dated after it even
// when the clock stepped back; an empty log has none to refresh.
func TestRefresh(t *testing.T) {
	var mu sync.Mutex
	now := logTime
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var saved atomic.Int64
	a := newAuthority(t, openLog(t, t.TempDir()), nil, WithClock(clock),
		WithHeadStore(func(*protocol.SignedTreeHead) error { saved.Add(1); return nil }))
	ctx := context.Background()
	if h, err := a.Refresh(ctx); h != nil || err != nil {
		t.Fatalf("refresh of an empty log: %v, %v; want nothing", h, err)
	}
	st, err := await(t, a.Add(ctx, docEntry(entry(t, "1000"), 1)))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = logTime.Add(time.Minute)
	mu.Unlock()
	before := saved.Load()
	fresh, err := a.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	switch h := fresh.Head; {
	case h.Size != st.Head.Head.Size || h.Root != st.Head.Head.Root:
		t.Fatalf("fresh head of size %d, want the same tree (size %d)", h.Size, st.Head.Head.Size)
	case !h.Time.Equal(logTime.Add(time.Minute)):
		t.Fatalf("fresh head dated %s, want the clock's %s", protocol.FormatTime(h.Time), protocol.FormatTime(logTime.Add(time.Minute)))
	case a.Head() != fresh:
		t.Fatal("Head does not return the fresh head")
	case saved.Load() != before+1:
		t.Fatal("the fresh head was not saved")
	}
	if _, err := trust(t).CheckTreeHead(fresh.Encoded, fresh.Signature, nil); err != nil {
		t.Fatal(err)
	}
	// The clock steps back (within the tolerance): the next stamp is
	// still dated after the fresh head.
	mu.Lock()
	now = logTime.Add(time.Minute - time.Second)
	mu.Unlock()
	st2, err := await(t, a.Add(ctx, docEntry(entry(t, "1000"), 2)))
	if err != nil {
		t.Fatal(err)
	}
	if !st2.Statement.Time.After(fresh.Head.Time) || st2.Head.Head.Time.Before(fresh.Head.Time) {
		t.Fatalf("stamp dated %s, head %s, after a fresh head of %s", protocol.FormatTime(st2.Statement.Time),
			protocol.FormatTime(st2.Head.Head.Time), protocol.FormatTime(fresh.Head.Time))
	}
	// A refresh never dates a head before the latest.
	again, err := a.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Head.Time.After(st2.Head.Head.Time) {
		t.Fatalf("refresh dated %s, not after the latest head's %s", protocol.FormatTime(again.Head.Time), protocol.FormatTime(st2.Head.Head.Time))
	}
	a.Close()
	if _, err := a.Refresh(ctx); err != ErrClosed {
		t.Fatalf("refresh after close: %v, want ErrClosed", err)
	}
}
