package logsigner

import (
	"crypto/rsa"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"tsnode/protocol"

	"tsnode/internal/merklelog"
	"tsnode/internal/testkeys"
)

// Tests of the signer's pipeline: appends go on while a tree head is
// being signed, and replies wait for both.

// gatedSign is a tree-head signer whose first call blocks until release
// is closed, holding the signer inside its first signature.
type gatedSign struct {
	once    sync.Once
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func newGatedSign() *gatedSign {
	return &gatedSign{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedSign) sign(key *rsa.PrivateKey, h *protocol.TreeHead) (*protocol.SignedTreeHead, error) {
	g.calls.Add(1)
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return protocol.SignTreeHead(key, h)
}

// newPipelineSigner starts a signer with the given tree-head signer and
// number of signing goroutines; it is closed at cleanup.
func newPipelineSigner(t testing.TB, lg *merklelog.Log, now func() time.Time, sign func(*rsa.PrivateKey, *protocol.TreeHead) (*protocol.SignedTreeHead, error), signers int) *LogSigner {
	t.Helper()
	return newPipelineSignerWait(t, lg, now, sign, signers, appendWait)
}

// newPipelineSignerWait is newPipelineSigner with another bound on the
// wait for an append in progress.
func newPipelineSignerWait(t testing.TB, lg *merklelog.Log, now func() time.Time, sign func(*rsa.PrivateKey, *protocol.TreeHead) (*protocol.SignedTreeHead, error), signers int, wait time.Duration) *LogSigner {
	t.Helper()
	s, err := newLogSigner(lg, testkeys.Private(t, "server"), entry(t, "server"), now, sign, signers, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// waitFor polls cond for up to 20s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// notAnswered fails if any of chans has a result.
func notAnswered(t testing.TB, chans []<-chan stampResult) {
	t.Helper()
	for i, ch := range chans {
		select {
		case r := <-ch:
			t.Fatalf("stamp %d answered (%v, %v) before its tree head was signed", i, r.st, r.err)
		default:
		}
	}
}

// While the first head is being signed, later stamps are appended to
// the log (durably) but not answered; once the signature is done every
// stamp is answered under a head that covers it.
func TestLogSignerAppendsWhileSigning(t *testing.T) {
	lg := openLog(t, t.TempDir())
	gate := newGatedSign()
	s := newPipelineSigner(t, lg, nil, gate.sign, 1)
	dir := testkeys.Directory(t, "server", "1000")
	requester := entry(t, "1000")

	chans := []<-chan stampResult{submitAsync(s, requester, 0)}
	<-gate.entered
	for i := 1; i < 40; i++ {
		chans = append(chans, submitAsync(s, requester, i))
	}
	waitFor(t, "the stamps queued during the signature to be appended", func() bool { return lg.Size() == 40 })
	time.Sleep(20 * time.Millisecond)
	notAnswered(t, chans)
	if h := s.Head(); h != nil {
		t.Fatalf("a head of size %d is published while the first signature is held", h.Head.Size)
	}
	close(gate.release)

	heads := map[uint64]*protocol.SignedTreeHead{}
	for i, ch := range chans {
		st, err := wait(t, ch)
		if err != nil {
			t.Fatalf("stamp %d: %v", i, err)
		}
		checkStamp(t, lg, dir, st, i)
		if st.Statement.Serial != uint64(i) {
			t.Fatalf("stamp %d has serial %d", i, st.Statement.Serial)
		}
		heads[st.Head.Head.Size] = st.Head
	}
	// The first head covers stamp 0 alone; the rest share one more.
	if len(heads) != 2 || heads[1] == nil || heads[40] == nil {
		t.Fatalf("heads of sizes %v, want 1 and 40", keys(heads))
	}
	if n := gate.calls.Load(); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	if h := s.Head(); h == nil || h.Head.Size != 40 {
		t.Fatalf("Head() = %+v, want size 40", h)
	}
}

func keys[V any](m map[uint64]V) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// switchClock returns logTime plus a nanosecond per call, or, while bad
// is set, a time the log cannot store, so that append fails.
type switchClock struct {
	bad atomic.Bool
	n   atomic.Int64
}

func (c *switchClock) now() time.Time {
	if c.bad.Load() {
		return time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) // beyond int64 Unix nanoseconds
	}
	return logTime.Add(time.Duration(c.n.Add(1)))
}

// A batch whose append fails while the previous one is being signed
// fails only its own stamps, at once; the batch being signed is answered
// and serials stay contiguous afterwards.
func TestLogSignerAppendFailsWhileSigning(t *testing.T) {
	lg := openLog(t, t.TempDir())
	gate := newGatedSign()
	clock := &switchClock{}
	s := newPipelineSigner(t, lg, clock.now, gate.sign, 1)
	dir := testkeys.Directory(t, "server", "1000")
	requester := entry(t, "1000")

	first := submitAsync(s, requester, 0)
	<-gate.entered
	clock.bad.Store(true)
	var failing []<-chan stampResult
	for i := 1; i <= 5; i++ {
		failing = append(failing, submitAsync(s, requester, i))
	}
	for i, ch := range failing {
		st, err := wait(t, ch)
		if err == nil || st != nil || errors.Is(err, ErrSignerClosed) {
			t.Fatalf("stamp %d on a failing log: %v, %v; want an append error", i+1, st, err)
		}
	}
	notAnswered(t, []<-chan stampResult{first})
	clock.bad.Store(false)
	close(gate.release)

	st, err := wait(t, first)
	if err != nil {
		t.Fatalf("stamp 0, signed while a later append failed: %v", err)
	}
	checkStamp(t, lg, dir, st, 0)
	for i := 6; i < 9; i++ {
		st := submit(t, s, i)
		checkStamp(t, lg, dir, st, i)
		if want := uint64(i - 5); st.Statement.Serial != want {
			t.Fatalf("stamp %d: serial %d, want %d", i, st.Statement.Serial, want)
		}
	}
}

// With one or two signing goroutines, free-running submitters get
// contiguous serials, receipts that verify, and Head() only grows.
func TestLogSignerPipelineConcurrent(t *testing.T) {
	for _, signers := range []int{1, 2} {
		t.Run(map[int]string{1: "one signer", 2: "two signers"}[signers], func(t *testing.T) {
			lg := openLog(t, t.TempDir())
			s := newPipelineSigner(t, lg, nil, protocol.SignTreeHead, signers)
			dir := testkeys.Directory(t, "server", "1000")
			const workers, each = 16, 20
			stamps := make([]*protocol.LogStamp, workers*each)
			stop := make(chan struct{})
			watched := make(chan error, 1)
			go func() {
				// Head() never goes back in size or time.
				var prev *protocol.TreeHead
				for {
					select {
					case <-stop:
						watched <- nil
						return
					default:
					}
					if h := s.Head(); h != nil {
						if prev != nil && (h.Head.Size < prev.Size || h.Head.Time.Before(prev.Time)) {
							watched <- errors.New("Head() went back")
							return
						}
						prev = h.Head
					}
					time.Sleep(100 * time.Microsecond)
				}
			}()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					requester := entry(t, "1000")
					for j := range each {
						i := w*each + j
						st, err := wait(t, submitAsync(s, requester, i))
						if err != nil {
							t.Errorf("stamp %d: %v", i, err)
							return
						}
						stamps[i] = st
					}
				})
			}
			wg.Wait()
			close(stop)
			if err := <-watched; err != nil {
				t.Fatal(err)
			}
			if t.Failed() {
				return
			}
			seen := make([]bool, len(stamps))
			heads := map[uint64]*protocol.SignedTreeHead{}
			for i, st := range stamps {
				checkStamp(t, lg, dir, st, i)
				n := st.Statement.Serial
				if n >= uint64(len(stamps)) || seen[n] {
					t.Fatalf("serial %d out of range or repeated", n)
				}
				seen[n] = true
				if h, ok := heads[st.Head.Head.Size]; ok && !protocol.SameHead(h, st.Head) {
					t.Fatalf("two different heads of size %d", st.Head.Head.Size)
				}
				heads[st.Head.Head.Size] = st.Head
			}
			var prev *protocol.TreeHead
			for size := range uint64(len(stamps)) + 1 {
				if h, ok := heads[size]; ok {
					if prev != nil && !h.Head.Time.After(prev.Time) {
						t.Fatalf("head of size %d not after head of size %d", size, prev.Size)
					}
					prev = h.Head
				}
			}
			if h := s.Head(); h == nil || h.Head.Size != uint64(len(stamps)) {
				t.Fatalf("Head() = %+v after %d stamps", h, len(stamps))
			}
			t.Logf("%d stamps, %d signed tree heads", len(stamps), len(heads))
		})
	}
}

// Close while a head is being signed and more stamps are appended and
// queued: it returns only once every one of them is answered.
func TestLogSignerCloseDrainsPipeline(t *testing.T) {
	lg := openLog(t, t.TempDir())
	gate := newGatedSign()
	s := newPipelineSigner(t, lg, nil, gate.sign, 1)
	dir := testkeys.Directory(t, "server", "1000")
	requester := entry(t, "1000")
	chans := []<-chan stampResult{submitAsync(s, requester, 0)}
	<-gate.entered
	for i := 1; i < 30; i++ {
		chans = append(chans, submitAsync(s, requester, i))
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a signature was held")
	case <-time.After(50 * time.Millisecond):
	}
	notAnswered(t, chans)
	close(gate.release)
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs")
	}
	for i, ch := range chans {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("stamp %d: %v", i, r.err)
			}
			checkStamp(t, lg, dir, r.st, i)
		default:
			t.Fatalf("stamp %d not answered when Close returned", i)
		}
	}
	if _, err := wait(t, submitAsync(s, requester, 99)); !errors.Is(err, ErrSignerClosed) {
		t.Fatalf("stamp after Close: %v", err)
	}
}

// A signature that fails fails the stamps of its head only; the next
// head covers their leaves, and later stamps verify.
func TestLogSignerSignFails(t *testing.T) {
	lg := openLog(t, t.TempDir())
	var fail atomic.Bool
	sign := func(key *rsa.PrivateKey, h *protocol.TreeHead) (*protocol.SignedTreeHead, error) {
		if fail.Load() {
			return nil, errors.New("no signature today")
		}
		return protocol.SignTreeHead(key, h)
	}
	s := newPipelineSigner(t, lg, nil, sign, 1)
	dir := testkeys.Directory(t, "server", "1000")
	requester := entry(t, "1000")
	checkStamp(t, lg, dir, submit(t, s, 0), 0)
	fail.Store(true)
	if st, err := wait(t, submitAsync(s, requester, 1)); err == nil || st != nil {
		t.Fatalf("stamp with a failing signature: %v, %v", st, err)
	}
	fail.Store(false)
	st := submit(t, s, 2)
	checkStamp(t, lg, dir, st, 2)
	if st.Statement.Serial != 2 || st.Head.Head.Size != 3 {
		t.Fatalf("serial %d in head of size %d, want 2 in 3", st.Statement.Serial, st.Head.Head.Size)
	}
}

// heldClock returns logTime plus a nanosecond per call; the call numbered
// hold (from 1) blocks until release is closed, holding that append in
// progress.
type heldClock struct {
	mu      sync.Mutex
	calls   int
	hold    int
	entered chan struct{}
	release chan struct{}
}

func newHeldClock(hold int) *heldClock {
	return &heldClock{hold: hold, entered: make(chan struct{}), release: make(chan struct{})}
}

func (c *heldClock) now() time.Time {
	c.mu.Lock()
	c.calls++
	n := c.calls
	c.mu.Unlock()
	if n == c.hold {
		close(c.entered)
		<-c.release
	}
	return logTime.Add(time.Duration(n))
}

// A signer that becomes free while an append is in progress waits for
// it, so the stamps of that append share the next head instead of
// waiting for the one after; the wait is bounded, so a slow append does
// not hold the stamps already appended.
func TestLogSignerWaitsForAppendInProgress(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	requester := entry(t, "1000")
	for _, c := range []struct {
		name  string
		wait  time.Duration
		heads int // distinct heads for stamps 1 and 2
	}{
		{"append ends within the wait", time.Minute, 1},
		{"append outlasts the wait", time.Millisecond, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			lg := openLog(t, t.TempDir())
			gate := newGatedSign()
			clock := newHeldClock(3) // the append of stamp 2
			s := newPipelineSignerWait(t, lg, clock.now, gate.sign, 1, c.wait)
			first := submitAsync(s, requester, 0)
			<-gate.entered // head 0 is being signed
			one := submitAsync(s, requester, 1)
			waitFor(t, "stamp 1 to be appended", func() bool { return lg.Size() == 2 })
			two := submitAsync(s, requester, 2)
			<-clock.entered // stamp 2's append is in progress
			close(gate.release)
			if _, err := wait(t, first); err != nil {
				t.Fatal(err)
			}
			if c.heads == 1 {
				time.Sleep(50 * time.Millisecond)
				notAnswered(t, []<-chan stampResult{one})
			} else {
				st, err := wait(t, one)
				if err != nil {
					t.Fatal(err)
				}
				checkStamp(t, lg, dir, st, 1)
				one = nil
			}
			close(clock.release)
			heads := map[uint64]bool{}
			for i, ch := range []<-chan stampResult{one, two} {
				if ch == nil {
					heads[2] = true
					continue
				}
				st, err := wait(t, ch)
				if err != nil {
					t.Fatalf("stamp %d: %v", i+1, err)
				}
				checkStamp(t, lg, dir, st, i+1)
				heads[st.Head.Head.Size] = true
			}
			if len(heads) != c.heads {
				t.Fatalf("stamps 1 and 2 under heads of sizes %v, want %d head(s)", keys(heads), c.heads)
			}
		})
	}
}

// slowSign is a tree-head signer that takes at least d, and reports
// each call on started.
func slowSign(d time.Duration, started chan<- int) func(*rsa.PrivateKey, *protocol.TreeHead) (*protocol.SignedTreeHead, error) {
	var n atomic.Int32
	return func(key *rsa.PrivateKey, h *protocol.TreeHead) (*protocol.SignedTreeHead, error) {
		select {
		case started <- int(n.Add(1)):
		default:
		}
		t := time.Now()
		sth, err := protocol.SignTreeHead(key, h)
		time.Sleep(d - time.Since(t))
		return sth, err
	}
}

// While a head is being signed, stamps arriving one by one are appended
// together shortly before the signature ends, not one append each, and
// still make the next head; once no signature is in progress a stamp is
// appended at once.
func TestLogSignerCollectsWhileSigning(t *testing.T) {
	lg := openLog(t, t.TempDir())
	started := make(chan int, 16)
	s := newPipelineSigner(t, lg, nil, slowSign(200*time.Millisecond, started), 1)
	dir := testkeys.Directory(t, "server", "1000")
	requester := entry(t, "1000")
	// Two stamps teach the signer how long a signature takes.
	for i := range 2 {
		checkStamp(t, lg, dir, submit(t, s, i), i)
	}
	for len(started) > 0 {
		<-started
	}
	// Stamp 2 starts a signature; stamps 3 to 9 come during it, 2 ms
	// apart, well before it should end (the appender collects for up to
	// maxCoalesce).
	chans := []<-chan stampResult{submitAsync(s, requester, 2)}
	<-started
	for i := 3; i < 10; i++ {
		time.Sleep(2 * time.Millisecond)
		chans = append(chans, submitAsync(s, requester, i))
	}
	times := map[time.Time]bool{}
	heads := map[uint64]bool{}
	for i, ch := range chans[1:] {
		st, err := wait(t, ch)
		if err != nil {
			t.Fatal(err)
		}
		checkStamp(t, lg, dir, st, i+3)
		times[st.Statement.Time] = true
		heads[st.Head.Head.Size] = true
	}
	if len(times) > 2 || len(heads) != 1 {
		t.Fatalf("7 stamps collected during one signature were appended in %d batches under %d heads, want at most 2 and 1", len(times), len(heads))
	}
	if _, err := wait(t, chans[0]); err != nil {
		t.Fatal(err)
	}
}
