package authority

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/crtsign"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

var logTime = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

func entry(t testing.TB, id identity.ID) identity.Entry { return testnet.Entry(t, id) }

func openLog(t testing.TB, dir string) *merklelog.Log { return testnet.OpenLog(t, dir) }

func serverSigner(t testing.TB) crypto.Signer {
	t.Helper()
	s, err := crtsign.New(testkeys.Private(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newAuthority starts an authority for "server" on lg, closed at cleanup.
func newAuthority(t testing.TB, lg *merklelog.Log, signer crypto.Signer, opts ...Option) *Authority {
	t.Helper()
	if signer == nil {
		signer = serverSigner(t)
	}
	a, err := New(lg, signer, entry(t, "server"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func docEntry(requester identity.Entry, i int) Entry {
	h := make([]byte, protocol.HashSize)
	copy(h, fmt.Sprintf("doc-%d", i))
	n := bytes.Repeat([]byte{0xee}, protocol.NonceSize)
	copy(n, fmt.Sprintf("n-%d", i))
	return Entry{Requester: requester, Hash: h, Nonce: n}
}

// await calls f, failing the test if it does not return within 20s.
func await(t testing.TB, f Future) (*Stamp, error) {
	t.Helper()
	type result struct {
		st  *Stamp
		err error
	}
	ch := make(chan result, 1)
	go func() { st, err := f(); ch <- result{st, err} }()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("future not answered within 20s")
		return nil, nil
	}
}

func trust(t testing.TB) *protocol.Trust {
	t.Helper()
	tr, err := protocol.NewTrust(testkeys.Directory(t, "server", "1000"), nil, "server")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// checkStamp checks a full stamp against its entry and the log: its leaf
// is the log's, its receipt verifies, its time is not after its head's.
func checkStamp(t testing.TB, lg *merklelog.Log, tr *protocol.Trust, st *Stamp, e Entry) {
	t.Helper()
	if !bytes.Equal(st.Statement.DocumentHash, e.Hash) || !bytes.Equal(st.Statement.Nonce, e.Nonce) {
		t.Fatalf("stamp %d carries another hash or nonce", st.Statement.Serial)
	}
	leaf, err := lg.Leaf(st.Statement.Serial)
	if err != nil || !bytes.Equal(leaf, st.Leaf) || !bytes.Equal(leaf, st.Statement.EncodeLeaf()) {
		t.Fatalf("stamp %d: log leaf differs (%v)", st.Statement.Serial, err)
	}
	if err := protocol.CheckInclusion(st.Leaf, st.Statement, st.Head.Head, st.Proof); err != nil {
		t.Fatalf("stamp %d: %v", st.Statement.Serial, err)
	}
	rc, err := protocol.ParseReceipt(st.Receipt().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Verify(tr, e.Hash); err != nil {
		t.Fatalf("stamp %d: receipt does not verify: %v", st.Statement.Serial, err)
	}
}

// gatedClock returns a fixed time; its first call blocks until release
// is closed, which holds the appender inside its first batch.
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

// hookSigner signs with the server key, but asks hook first: an error
// from it fails the signature.
type hookSigner struct {
	crypto.Signer
	mu    sync.Mutex
	calls int
	hook  func(call int) error
}

func (s *hookSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	if err := s.hook(call); err != nil {
		return nil, err
	}
	return s.Signer.Sign(r, digest, opts)
}

var errSign = errors.New("signer out of order")

func isDone(r *request) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// testStore is a HeadStore of functions: guard sees each tree's size,
// save each head saved; either may be nil.
type testStore struct {
	guard func(size uint64) error
	save  func(*protocol.SignedTreeHead) error
}

func (s testStore) Guard(size uint64, _ tlog.Hash, _ time.Time) error {
	if s.guard == nil {
		return nil
	}
	return s.guard(size)
}

func (s testStore) SaveHead(sth *protocol.SignedTreeHead) error {
	if s.save == nil {
		return nil
	}
	return s.save(sth)
}
