package logsigner

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
	"tsnode/protocol"

	"golang.org/x/mod/sumdb/tlog"

	"tsnode/identity"
	"tsnode/internal/merklelog"
	"tsnode/internal/testkeys"
)

// Tests of the batched signer: stamps become leaves of a durable Merkle
// log in t.TempDir(), one tree head is signed per batch.

var logTime = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

// gatedClock returns a fixed time; its first call blocks until release is
// closed, which holds the signer inside its first batch while the test
// queues more stamps: they then form the second batch, deterministically.
type gatedClock struct {
	t       time.Time
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func newGatedClock(t time.Time) *gatedClock {
	return &gatedClock{t: t, entered: make(chan struct{}), release: make(chan struct{})}
}

func (c *gatedClock) now() time.Time {
	c.once.Do(func() {
		close(c.entered)
		<-c.release
	})
	return c.t
}

// fixedClock returns a clock stuck at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// openLog opens (or reopens) the log in dir; it is closed at cleanup.
func openLog(t testing.TB, dir string) *merklelog.Log {
	t.Helper()
	lg, err := merklelog.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return lg
}

// newSigner starts a signer for "server" on lg; it is closed at cleanup.
func newSigner(t testing.TB, lg *merklelog.Log, now func() time.Time) *LogSigner {
	t.Helper()
	s, err := NewLogSigner(lg, testkeys.Private(t, "server"), entry(t, "server"), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// docHash is a distinct document hash per i.
func docHash(i int) []byte {
	h := fill(protocol.HashSize, 0)
	copy(h, fmt.Sprintf("doc-%d", i))
	return h
}

// docNonce is a distinct nonce per i.
func docNonce(i int) []byte {
	n := fill(protocol.NonceSize, 0xee)
	copy(n, fmt.Sprintf("n-%d", i))
	return n
}

type stampResult struct {
	st  *protocol.LogStamp
	err error
}

// submitAsync submits a stamp; the result arrives on the channel.
func submitAsync(s *LogSigner, requester identity.Entry, i int) <-chan stampResult {
	ch := make(chan stampResult, 1)
	s.Submit(requester, docHash(i), docNonce(i), func(st *protocol.LogStamp, err error) { ch <- stampResult{st, err} })
	return ch
}

func wait(t testing.TB, ch <-chan stampResult) (*protocol.LogStamp, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("stamp not answered within 20s")
		return nil, nil
	}
}

// submit stamps document i and waits for it.
func submit(t testing.TB, s *LogSigner, i int) *protocol.LogStamp {
	t.Helper()
	st, err := wait(t, submitAsync(s, entry(t, "1000"), i))
	if err != nil {
		t.Fatalf("stamp %d: %v", i, err)
	}
	return st
}

// checkStamp checks a stamp against the request and the log: its leaf is
// the log's leaf at its serial, its time is not after its head's, and its
// receipt verifies.
func checkStamp(t testing.TB, lg *merklelog.Log, dir *identity.Directory, st *protocol.LogStamp, i int) {
	t.Helper()
	if !bytes.Equal(st.Statement.DocumentHash, docHash(i)) || !bytes.Equal(st.Statement.Nonce, docNonce(i)) {
		t.Fatalf("stamp %d carries hash %x nonce %x", i, st.Statement.DocumentHash, st.Statement.Nonce)
	}
	if st.Statement.Time.After(st.Head.Head.Time) {
		t.Fatalf("stamp %d: time %s after its tree head's %s", i, protocol.FormatTime(st.Statement.Time), protocol.FormatTime(st.Head.Head.Time))
	}
	if st.Statement.Serial >= st.Head.Head.Size {
		t.Fatalf("stamp %d: serial %d not in tree of size %d", i, st.Statement.Serial, st.Head.Head.Size)
	}
	leaf, err := lg.Leaf(st.Statement.Serial)
	if err != nil || !bytes.Equal(leaf, st.Statement.EncodeLeaf()) {
		t.Fatalf("stamp %d: log leaf %d differs from the stamp (%v)", i, st.Statement.Serial, err)
	}
	rc, err := protocol.ParseReceipt(st.Receipt().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Verify(trustOf(t, dir), docHash(i)); err != nil {
		t.Fatalf("stamp %d: receipt does not verify: %v", i, err)
	}
}

func TestLogSignerBatches(t *testing.T) {
	lg := openLog(t, t.TempDir())
	clock := newGatedClock(logTime)
	s := newSigner(t, lg, clock.now)
	dir := testkeys.Directory(t, "server", "1000")
	if s.Head() != nil {
		t.Fatal("empty log has a signed head")
	}
	requester := entry(t, "1000")

	// Stamp 0 holds the signer in its first batch ...
	results := []<-chan stampResult{submitAsync(s, requester, 0)}
	<-clock.entered
	// ... while 64 more queue up concurrently.
	const queued = 64
	chans := make([]<-chan stampResult, queued)
	var wg sync.WaitGroup
	for i := range queued {
		wg.Go(func() { chans[i] = submitAsync(s, requester, i+1) })
	}
	wg.Wait()
	close(clock.release)
	results = append(results, chans...)

	heads := map[string]*protocol.SignedTreeHead{}
	serials := map[uint64]int{}
	for i, ch := range results {
		st, err := wait(t, ch)
		if err != nil {
			t.Fatalf("stamp %d: %v", i, err)
		}
		checkStamp(t, lg, dir, st, i)
		heads[string(st.Head.Encoded)] = st.Head
		if j, dup := serials[st.Statement.Serial]; dup {
			t.Fatalf("stamps %d and %d share serial %d", j, i, st.Statement.Serial)
		}
		serials[st.Statement.Serial] = i
	}
	// Two batches, two signatures for 65 stamps (or one, if the second
	// batch was appended before the signer took the first).
	if len(heads) < 1 || len(heads) > 2 {
		t.Fatalf("%d distinct tree heads for %d stamps, want 2", len(heads), len(results))
	}
	for n := range uint64(len(results)) {
		if _, ok := serials[n]; !ok {
			t.Fatalf("serials not contiguous: %d missing", n)
		}
	}
	head := s.Head()
	if head == nil || head.Head.Size != uint64(len(results)) || head.Head.Size != lg.Size() {
		t.Fatalf("Head() = %+v, want size %d", head, len(results))
	}
	if err := protocol.VerifySignature(&testkeys.Private(t, "server").PublicKey, head.Encoded, head.Signature); err != nil {
		t.Fatal("Head() signature does not verify")
	}
}

// Free-running concurrent submitters: serials are unique and contiguous,
// every stamp is in its batch's tree, and tree heads only grow.
func TestLogSignerConcurrent(t *testing.T) {
	lg := openLog(t, t.TempDir())
	s := newSigner(t, lg, nil)
	dir := testkeys.Directory(t, "server", "1000")
	const workers, each = 8, 25
	stamps := make([]*protocol.LogStamp, workers*each)
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
	if len(heads) > len(stamps) {
		t.Fatalf("%d heads for %d stamps", len(heads), len(stamps))
	}
	t.Logf("%d stamps, %d signed tree heads", len(stamps), len(heads))
	// Larger heads are later: time strictly increases with size.
	var prev *protocol.TreeHead
	for size := range uint64(len(stamps)) + 1 {
		h, ok := heads[size]
		if !ok {
			continue
		}
		if prev != nil && !h.Head.Time.After(prev.Time) {
			t.Fatalf("head of size %d at %s, not after head of size %d at %s", size, protocol.FormatTime(h.Head.Time), prev.Size, protocol.FormatTime(prev.Time))
		}
		prev = h.Head
	}
}

// A restart reopens the same log: the signed head is the same, serials
// continue and times never go backwards, even with the clock stepped back.
func TestLogSignerRestart(t *testing.T) {
	dataDir := t.TempDir()
	dir := testkeys.Directory(t, "server", "1000")
	key := testkeys.Private(t, "server")
	self := entry(t, "server")

	lg, err := merklelog.Open(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewLogSigner(lg, key, self, fixedClock(logTime))
	if err != nil {
		t.Fatal(err)
	}
	var before []*protocol.LogStamp
	for i := range 3 {
		before = append(before, submit(t, s, i))
	}
	headBefore := s.Head()
	s.Close()
	if err := lg.Close(); err != nil {
		t.Fatal(err)
	}

	// Each round reopens the log with another clock; a stamp's time is
	// the clock's, or 1ns after the previous batch if the clock is behind.
	for round, c := range []struct {
		name string
		now  time.Time
	}{
		{"clock stepped back an hour", logTime.Add(-time.Hour)},
		{"clock at the same instant", logTime},
		{"clock ahead", logTime.Add(time.Hour)},
		{"clock stepped back again", logTime.Add(-2 * time.Hour)},
	} {
		t.Run(c.name, func(t *testing.T) {
			lg := openLog(t, dataDir)
			s := newSigner(t, lg, fixedClock(c.now))
			prevHead := s.Head()
			if round == 0 && !protocol.SameHead(prevHead, headBefore) {
				t.Fatalf("head after restart differs: %+v, before %+v", prevHead.Head, headBefore.Head)
			}
			if prevHead == nil || prevHead.Head.Size != lg.Size() {
				t.Fatalf("no signed head for the reopened log of size %d", lg.Size())
			}
			prev := prevHead.Head
			for k := range 2 {
				i := 100*(round+1) + k
				st := submit(t, s, i)
				checkStamp(t, lg, dir, st, i)
				if st.Statement.Serial != prev.Size {
					t.Fatalf("serial %d after a log of size %d", st.Statement.Serial, prev.Size)
				}
				want := c.now
				if !want.After(prev.Time) {
					want = prev.Time.Add(time.Nanosecond)
				}
				if !st.Statement.Time.Equal(want) {
					t.Fatalf("time %s after %s, want %s", protocol.FormatTime(st.Statement.Time), protocol.FormatTime(prev.Time), protocol.FormatTime(want))
				}
				prev = st.Head.Head
			}
			// Receipts from before the restart still verify, and the new
			// log extends the old one.
			for i, st := range before {
				checkStamp(t, lg, dir, st, i)
			}
			proof, err := lg.ConsistencyProof(headBefore.Head.Size, prev.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := protocol.CheckConsistency(headBefore.Head, prev, proof); err != nil {
				t.Fatal(err)
			}
			s.Close()
			lg.Close()
		})
	}
}

// Close answers every stamp queued before it, refuses stamps after it,
// and a log that fails under the signer fails its stamps instead of
// hanging them.
func TestLogSignerClose(t *testing.T) {
	requester := entry(t, "1000")
	t.Run("queued stamps finish", func(t *testing.T) {
		lg := openLog(t, t.TempDir())
		clock := newGatedClock(logTime)
		s := newSigner(t, lg, clock.now)
		chans := []<-chan stampResult{submitAsync(s, requester, 0)}
		<-clock.entered
		for i := 1; i < 20; i++ {
			chans = append(chans, submitAsync(s, requester, i))
		}
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
			t.Fatal("Close returned before the queued stamps were signed")
		case <-time.After(50 * time.Millisecond):
		}
		close(clock.release)
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatal("Close hangs")
		}
		dir := testkeys.Directory(t, "server", "1000")
		for i, ch := range chans {
			st, err := wait(t, ch)
			if err != nil {
				t.Fatalf("queued stamp %d failed: %v", i, err)
			}
			checkStamp(t, lg, dir, st, i)
		}
		if _, err := wait(t, submitAsync(s, requester, 99)); !errors.Is(err, ErrSignerClosed) {
			t.Fatalf("stamp after Close: %v, want ErrSignerClosed", err)
		}
		s.Close() // twice is fine
		if lg.Size() != uint64(len(chans)) {
			t.Fatalf("log size %d, want %d", lg.Size(), len(chans))
		}
	})
	t.Run("log closed under the signer", func(t *testing.T) {
		lg := openLog(t, t.TempDir())
		s := newSigner(t, lg, nil)
		submit(t, s, 0)
		if err := lg.Close(); err != nil {
			t.Fatal(err)
		}
		var chans []<-chan stampResult
		for i := range 5 {
			chans = append(chans, submitAsync(s, requester, i+1))
		}
		for _, ch := range chans {
			if st, err := wait(t, ch); !errors.Is(err, merklelog.ErrClosed) || st != nil {
				t.Fatalf("stamp on a closed log: %v, %v; want merklelog.ErrClosed", st, err)
			}
		}
		if h := s.Head(); h == nil || h.Head.Size != 1 {
			t.Fatalf("head after failed batches: %+v", h)
		}
	})
}

// The log signer's fast path signs heads with the bytes SignTreeHead
// makes, and a key it does not take falls back to SignTreeHead.
func TestTreeHeadSignerMatchesSignTreeHead(t *testing.T) {
	key := testkeys.Private(t, "server")
	self := entry(t, "server")
	noCRT := *key
	noCRT.Precomputed = rsa.PrecomputedValues{}
	for _, k := range []*rsa.PrivateKey{key, &noCRT} {
		h := &protocol.TreeHead{ServerID: self.ID, ServerPeer: self.PeerID, Size: 7, Root: tlog.Hash{1, 2, 3}, Time: logTime}
		got, err := treeHeadSigner(k)(k, h)
		if err != nil {
			t.Fatal(err)
		}
		want, err := protocol.SignTreeHead(key, h)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Encoded, want.Encoded) || !bytes.Equal(got.Signature, want.Signature) {
			t.Fatalf("precomputed CRT values %v: treeHeadSigner's head differs from SignTreeHead's", k.Precomputed.Dp != nil)
		}
	}
}
