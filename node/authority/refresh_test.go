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
// one, not guarded again (its tree is) and returned by Head; a stamp after it is dated after it even
// when the clock stepped back; an empty log has none to refresh.
func TestRefresh(t *testing.T) {
	var mu sync.Mutex
	now := logTime
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var guarded atomic.Int64
	a := newAuthority(t, openLog(t, t.TempDir()), nil, WithClock(clock),
		WithHeadStore(testStore{guard: func(uint64) error { guarded.Add(1); return nil }}))
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
	before := guarded.Load()
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
	case guarded.Load() != before:
		t.Fatal("the fresh head's tree was guarded again")
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

// TestRefreshUnderLoad: fresh heads asked for while stamps come and go
// never take Head back to a smaller tree or an earlier time, and never
// re-sign a tree older than a stamp already answered.
func TestRefreshUnderLoad(t *testing.T) {
	a := newAuthority(t, openLog(t, t.TempDir()), nil)
	ctx := context.Background()
	if _, err := await(t, a.Add(ctx, docEntry(entry(t, "1000"), 0))); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var answered atomic.Uint64 // the largest tree size an answer had
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				st, err := a.Add(ctx, docEntry(entry(t, "1000"), w*100000+i))()
				if err != nil {
					t.Error(err)
					return
				}
				for n := answered.Load(); st.Head.Head.Size > n && !answered.CompareAndSwap(n, st.Head.Head.Size); n = answered.Load() {
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // Head only grows, in size and time
		defer wg.Done()
		last := a.Head()
		for {
			select {
			case <-stop:
				return
			default:
			}
			h := a.Head()
			if h.Head.Size < last.Head.Size || h.Head.Time.Before(last.Head.Time) {
				t.Errorf("Head went from size %d at %s to size %d at %s", last.Head.Size, protocol.FormatTime(last.Head.Time), h.Head.Size, protocol.FormatTime(h.Head.Time))
				return
			}
			last = h
		}
	}()
	fresh, busy := 0, 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		before := answered.Load()
		h, err := a.Refresh(ctx)
		switch {
		case err == ErrBusy:
			busy++
		case err != nil:
			t.Fatal(err)
		case h.Head.Size < before:
			t.Fatalf("fresh head of size %d after an answer under a head of size %d", h.Head.Size, before)
		default:
			fresh++
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d fresh heads, %d refreshes refused as busy", fresh, busy)
}
