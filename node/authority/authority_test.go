package authority

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// Concurrent adders: serials are contiguous and unique, every stamp
// verifies, heads cover at most MaxBatch and grow in size and time, and
// each goroutine's futures resolve in the order it added them.
func TestConcurrentStamps(t *testing.T) {
	lg := openLog(t, t.TempDir())
	const maxBatch = 8
	a := newAuthority(t, lg, nil, WithMaxBatch(maxBatch), WithMaxWait(2*time.Millisecond))
	if a.Head() != nil {
		t.Fatal("empty log has a head")
	}
	tr := trust(t)
	requester := entry(t, "1000")
	const workers, each = 4, 40
	stamps := make([]*Stamp, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			reqs := make([]*request, each)
			for j := range each {
				reqs[j] = a.add(context.Background(), docEntry(requester, w*each+j), false)
			}
			for j, r := range reqs {
				st, err := await(t, r.future())
				if err != nil {
					t.Errorf("stamp %d: %v", w*each+j, err)
					return
				}
				for _, earlier := range reqs[:j] {
					if !isDone(earlier) {
						t.Errorf("future %d resolved before an earlier one", j)
					}
				}
				stamps[w*each+j] = st
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint64]bool{}
	heads := map[uint64]*protocol.SignedTreeHead{}
	for i, st := range stamps {
		checkStamp(t, lg, tr, st, docEntry(requester, i))
		if seen[st.Statement.Serial] {
			t.Fatalf("serial %d twice", st.Statement.Serial)
		}
		seen[st.Statement.Serial] = true
		heads[st.Head.Head.Size] = st.Head
	}
	for n := range uint64(len(stamps)) {
		if !seen[n] {
			t.Fatalf("serial %d missing", n)
		}
	}
	var prev *protocol.TreeHead
	for size := range uint64(len(stamps)) + 1 {
		h, ok := heads[size]
		if !ok {
			continue
		}
		from := uint64(0)
		if prev != nil {
			from = prev.Size
			if !h.Head.Time.After(prev.Time) {
				t.Fatalf("head of size %d not later than head of size %d", size, prev.Size)
			}
		}
		if size-from > maxBatch {
			t.Fatalf("head of size %d covers %d stamps since the head of size %d, max %d", size, size-from, from, maxBatch)
		}
		prev = h.Head
	}
	if h := a.Head(); h == nil || h.Head.Size != uint64(len(stamps)) {
		t.Fatalf("Head() = %+v, want size %d", h, len(stamps))
	}
	if _, err := a.ConsistencyProof(3, uint64(len(stamps))); err != nil {
		t.Fatal(err)
	}
	old := heads[prevSize(heads, 3)]
	if old != nil {
		p, err := a.ConsistencyProof(old.Head.Size, a.Head().Head.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.CheckConsistency(old, a.Head(), p); err != nil {
			t.Fatal(err)
		}
	}
}

// prevSize is the smallest head size in heads at least n.
func prevSize(heads map[uint64]*protocol.SignedTreeHead, n uint64) uint64 {
	best := uint64(0)
	for s := range heads {
		if s >= n && (best == 0 || s < best) {
			best = s
		}
	}
	return best
}

// A restart reopens the log: the head is re-signed for the stored tree,
// serials continue, and times strictly increase even when the clock
// steps back (within the clock tolerance; beyond it: TestClockSteps).
func TestRestart(t *testing.T) {
	dataDir := t.TempDir()
	tr := trust(t)
	requester := entry(t, "1000")
	i := 0
	var prev *protocol.TreeHead
	for _, now := range []time.Time{logTime, logTime.Add(-time.Second), logTime, logTime.Add(time.Hour), logTime.Add(time.Hour - 1500*time.Millisecond)} {
		open := merklelog.Open
		if i == 0 {
			open = merklelog.Create
		}
		lg, err := open(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(lg, serverSigner(t), entry(t, "server"), WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil {
			h := a.Head()
			if h == nil || h.Head.Size != prev.Size || h.Head.Root != prev.Root || !h.Head.Time.Equal(prev.Time) {
				t.Fatalf("head after restart %+v, want the stored tree %+v", h, prev)
			}
		}
		for range 3 {
			e := docEntry(requester, i)
			st, err := await(t, a.Add(context.Background(), e))
			if err != nil {
				t.Fatal(err)
			}
			checkStamp(t, lg, tr, st, e)
			if st.Statement.Serial != uint64(i) {
				t.Fatalf("serial %d, want %d", st.Statement.Serial, i)
			}
			if prev != nil && !st.Statement.Time.After(prev.Time) {
				t.Fatalf("time %v not after the previous head's %v", st.Statement.Time, prev.Time)
			}
			if st.Statement.Time.After(st.Head.Head.Time) {
				t.Fatal("stamp time after its head's")
			}
			prev = st.Head.Head
			i++
		}
		a.Close()
		if err := lg.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A stamp whose ctx is done before it is appended is dropped: its future
// says why, and no serial is spent on it; once appended, a stamp is
// logged and answered whatever its ctx.
func TestCancel(t *testing.T) {
	lg := openLog(t, t.TempDir())
	clock := newGatedClock(logTime)
	a := newAuthority(t, lg, nil, WithClock(clock.now))
	requester := entry(t, "1000")
	first := a.Add(context.Background(), docEntry(requester, 0))
	<-clock.entered // the appender holds stamp 0 in its append
	ctx, cancel := context.WithCancel(context.Background())
	dropped := a.Add(ctx, docEntry(requester, 1))
	kept := a.Add(context.Background(), docEntry(requester, 2))
	cancel()
	close(clock.release)
	if _, err := await(t, dropped); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled stamp: %v, want context.Canceled", err)
	}
	for i, f := range []Future{first, kept} {
		st, err := await(t, f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Statement.Serial != uint64(i) {
			t.Fatalf("serial %d, want %d", st.Statement.Serial, i)
		}
	}
	if lg.Size() != 2 {
		t.Fatalf("log size %d, want 2", lg.Size())
	}
	// Cancelled after being appended: logged and answered.
	ctx, cancel = context.WithCancel(context.Background())
	f := a.AddDurable(ctx, docEntry(requester, 3))
	if _, err := await(t, f); err != nil {
		t.Fatal(err)
	}
	cancel()
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := await(t, a.Add(ctx, docEntry(requester, 4))); !errors.Is(err, context.Canceled) {
		t.Fatalf("stamp with a done ctx: %v", err)
	}
}

// Close answers every stamp added before it, then refuses new ones.
func TestClose(t *testing.T) {
	lg := openLog(t, t.TempDir())
	clock := newGatedClock(logTime)
	a := newAuthority(t, lg, nil, WithClock(clock.now))
	requester := entry(t, "1000")
	futures := []Future{a.Add(context.Background(), docEntry(requester, 0))}
	<-clock.entered
	for i := 1; i < 20; i++ {
		futures = append(futures, a.Add(context.Background(), docEntry(requester, i)))
	}
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	close(clock.release)
	<-closed
	tr := trust(t)
	for i, f := range futures {
		st, err := await(t, f)
		if err != nil {
			t.Fatalf("stamp %d: %v", i, err)
		}
		checkStamp(t, lg, tr, st, docEntry(requester, i))
	}
	if _, err := await(t, a.Add(context.Background(), docEntry(requester, 99))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v, want ErrClosed", err)
	}
	if _, err := await(t, a.AddDurable(context.Background(), docEntry(requester, 99))); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddDurable after Close: %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if lg.Size() != 20 {
		t.Fatalf("log size %d, want 20", lg.Size())
	}
}

// A failed signature fails the stamps of its head only; their leaves stay
// logged and the next head covers them.
func TestSignerFails(t *testing.T) {
	lg := openLog(t, t.TempDir())
	s := &hookSigner{Signer: serverSigner(t), hook: func(call int) error {
		if call == 2 {
			return errSign
		}
		return nil
	}}
	// The identity key signs every head, so the hook sees each one.
	a := newAuthority(t, lg, s, WithOnlineKeyLifetime(0))
	requester := entry(t, "1000")
	tr := trust(t)
	for i := range 3 {
		st, err := await(t, a.Add(context.Background(), docEntry(requester, i)))
		if i == 1 {
			if !errors.Is(err, errSign) || st != nil {
				t.Fatalf("stamp under a failed signature: %v, %v", st, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checkStamp(t, lg, tr, st, docEntry(requester, i))
		if st.Statement.Serial != uint64(i) {
			t.Fatalf("serial %d, want %d", st.Statement.Serial, i)
		}
	}
	if h := a.Head(); h.Head.Size != 3 {
		t.Fatalf("head size %d, want 3", h.Head.Size)
	}
}

// A log that fails under the authority fails the stamps of the failed
// append, and nothing else.
func TestAppendFails(t *testing.T) {
	lg := openLog(t, t.TempDir())
	a := newAuthority(t, lg, nil)
	requester := entry(t, "1000")
	if _, err := await(t, a.Add(context.Background(), docEntry(requester, 0))); err != nil {
		t.Fatal(err)
	}
	lg.Close()
	for i := 1; i < 4; i++ {
		for _, f := range []Future{a.Add(context.Background(), docEntry(requester, i)), a.AddDurable(context.Background(), docEntry(requester, i))} {
			if st, err := await(t, f); !errors.Is(err, merklelog.ErrClosed) || st != nil {
				t.Fatalf("stamp on a closed log: %v, %v", st, err)
			}
		}
	}
	if h := a.Head(); h == nil || h.Head.Size != 1 {
		t.Fatalf("head after failed appends: %+v", h)
	}
}

// AddDurable answers once the leaf is durable, with no head: it resolves
// while the signer is stuck, and Add's stamps wait for it.
func TestAddDurableDoesNotWaitForHead(t *testing.T) {
	lg := openLog(t, t.TempDir())
	unblock := make(chan struct{})
	s := &hookSigner{Signer: serverSigner(t), hook: func(int) error { <-unblock; return nil }}
	a := newAuthority(t, lg, s, WithOnlineKeyLifetime(0))
	requester := entry(t, "1000")
	full := a.add(context.Background(), docEntry(requester, 0), false)
	for i := 1; i < 4; i++ {
		st, err := await(t, a.AddDurable(context.Background(), docEntry(requester, i)))
		if err != nil {
			t.Fatal(err)
		}
		if st.Head != nil || st.Proof != nil || st.Statement.Serial != uint64(i) {
			t.Fatalf("durable stamp %+v", st)
		}
		if leaf, err := lg.Leaf(uint64(i)); err != nil || string(leaf) != string(st.Leaf) {
			t.Fatalf("durable stamp %d is not the log's leaf (%v)", i, err)
		}
	}
	if isDone(full) {
		t.Fatal("Add answered while the signer is stuck")
	}
	close(unblock)
	st, err := await(t, full.future())
	if err != nil {
		t.Fatal(err)
	}
	checkStamp(t, lg, trust(t), st, docEntry(requester, 0))
	a.Close()
	if h := a.Head(); h.Head.Size != 4 {
		t.Fatalf("head size %d after Close, want 4 (durable leaves covered)", h.Head.Size)
	}
}

// New refuses a signer whose key is not the server's.
func TestWrongKey(t *testing.T) {
	lg := openLog(t, t.TempDir())
	if _, err := New(lg, testkeys.Private(t, "1000"), entry(t, "server")); err == nil {
		t.Fatal("New accepted another key")
	}
	a, err := New(lg, testkeys.Private(t, "server"), entry(t, "server")) // *rsa.PrivateKey is a crypto.Signer
	if err != nil {
		t.Fatal(err)
	}
	st, err := await(t, a.Add(context.Background(), docEntry(entry(t, "1000"), 0)))
	if err != nil {
		t.Fatal(err)
	}
	checkStamp(t, lg, trust(t), st, docEntry(entry(t, "1000"), 0))
	a.Close()
}
