package protocol

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
)

// The pure core's tests need real logs and signed heads, but not the
// authority's pipeline (node/authority): testLog appends each batch to a
// real merklelog and signs its head at once, in the caller's goroutine.

// logTime has a non-zero nanosecond part, so any loss of resolution shows.
var logTime = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// openLog opens the log in dir, or creates it if there is none; it is closed at cleanup.
func openLog(t testing.TB, dir string) *merklelog.Log {
	t.Helper()
	open := merklelog.Open
	if _, err := os.Stat(filepath.Join(dir, merklelog.FileName)); errors.Is(err, fs.ErrNotExist) {
		open = merklelog.Create
	}
	lg, err := open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return lg
}

// testLog is a log of the server id, signing a head per batch.
type testLog struct {
	lg   *merklelog.Log
	id   identity.ID
	now  func() time.Time
	head *SignedTreeHead
}

// newSigner logs as "server" on lg; now may be nil.
func newSigner(t testing.TB, lg *merklelog.Log, now func() time.Time) *testLog {
	return newSignerAs(t, lg, identity.ServerID, now)
}

// newSignerAs logs as the test identity id.
func newSignerAs(t testing.TB, lg *merklelog.Log, id identity.ID, now func() time.Time) *testLog {
	if now == nil {
		now = time.Now
	}
	return &testLog{lg: lg, id: id, now: now}
}

// Head is the latest signed head.
func (l *testLog) Head() *SignedTreeHead { return l.head }

// batch appends documents is (docHash(i), docNonce(i)) of requester as
// one batch, signs the head of the new tree, and returns the stamps.
func (l *testLog) batch(t testing.TB, requester identity.Entry, is ...int) []*LogStamp {
	t.Helper()
	self := entry(t, l.id)
	var stmts []*Statement
	b, err := l.lg.Append(func(first uint64, at time.Time) ([][]byte, error) {
		var leaves [][]byte
		for k, i := range is {
			st := &Statement{HashAlgorithm: HashAlgorithm, DocumentHash: docHash(i), Time: at, Serial: first + uint64(k),
				RequesterID: requester.ID, RequesterPeer: requester.PeerID, ServerID: self.ID, ServerPeer: self.PeerID, Nonce: docNonce(i)}
			stmts = append(stmts, st)
			leaves = append(leaves, st.EncodeLeaf())
		}
		return leaves, nil
	}, l.now())
	if err != nil {
		t.Fatal(err)
	}
	h := &TreeHead{ServerID: self.ID, ServerPeer: self.PeerID, Size: b.Size, Root: b.Root, Time: b.Time}
	enc := h.Encode()
	l.head = &SignedTreeHead{Head: h, Encoded: enc, Signature: signAs(t, l.id, enc)}
	var out []*LogStamp
	for _, st := range stmts {
		proof, err := l.lg.InclusionProof(st.Serial, b.Size)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &LogStamp{Statement: st, Proof: proof, Head: l.head})
	}
	return out
}

// submit stamps document i for "1000" in a batch of its own.
func submit(t testing.TB, l *testLog, i int) *LogStamp {
	t.Helper()
	return l.batch(t, entry(t, "1000"), i)[0]
}

// docHash is a distinct document hash per i.
func docHash(i int) []byte {
	h := fill(HashSize, 0)
	copy(h, fmt.Sprintf("doc-%d", i))
	return h
}

// docNonce is a distinct nonce per i.
func docNonce(i int) []byte {
	n := fill(NonceSize, 0xee)
	copy(n, fmt.Sprintf("n-%d", i))
	return n
}
