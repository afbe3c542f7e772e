package stamp

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// A server whose clock is behind its log's last time refuses session
// and one-shot stamps as clock-behind, logs nothing, and stamps again
// once its clock catches up.
func TestClockBehindRefused(t *testing.T) {
	last := time.Date(2027, 11, 29, 17, 53, 38, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(last.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	lg := openLog(t, t.TempDir())
	a := newSigner(t, lg, now)
	if _, err := a.AddDurable(context.Background(), authority.Entry{Requester: testnet.Entry(t, "1000"), Hash: docHash(0), Nonce: docNonce(0)})(); err != nil {
		t.Fatal(err)
	}
	clock.Store(last.Add(-365 * 24 * time.Hour).UnixNano()) // the clock is set right
	h := testnet.NewHost(t, "server", testnet.Transports[0].Listen)
	dir := testkeys.Directory(t, "server", "1000")
	svc, err := New(h, testkeys.Private(t, "server"), testnet.Entry(t, "server"), dir, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	client := testnet.ClientOf(t, "1000", h)
	sess := mustSession(t, client)
	oneShot := &OneShotClient{Host: client, Key: testkeys.Private(t, "1000"), Self: testnet.Entry(t, "1000"), Server: testnet.Entry(t, "server"), Trust: testnet.Trust(t, dir)}

	if _, err := sess.Stamp(testnet.Ctx(t), docHash(1)); !errors.Is(err, protocol.ErrClockBehind) {
		t.Fatalf("session stamp with the clock a year behind: %v, want clock-behind", err)
	}
	if _, err := oneShot.Stamp(testnet.Ctx(t), docHash(2)); !errors.Is(err, protocol.ErrClockBehind) {
		t.Fatalf("one-shot stamp with the clock a year behind: %v, want clock-behind", err)
	}
	if lg.Size() != 1 {
		t.Fatalf("log holds %d stamps, want 1: a refused stamp was logged", lg.Size())
	}
	// The session goes on: once the clock catches up it stamps again.
	clock.Store(last.Add(time.Second).UnixNano())
	st, err := sess.Stamp(testnet.Ctx(t), docHash(3))
	if err != nil {
		t.Fatalf("stamp once the clock caught up: %v", err)
	}
	if st.Statement.Serial != 1 || !st.Statement.Time.Equal(last.Add(time.Second)) {
		t.Fatalf("serial %d at %v, want serial 1 at %v", st.Statement.Serial, st.Statement.Time, last.Add(time.Second))
	}
}
