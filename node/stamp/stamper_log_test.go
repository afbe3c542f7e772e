package stamp

import (
	"bytes"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// The Stamper numbers one-shot stamps from the log: serials
// are leaf indexes, the leaf is in the log, the v1 receipt verifies.
func TestStamperUseLog(t *testing.T) {
	lg := openLog(t, t.TempDir())
	f := newStampFixture(t, logTime)
	s := newSigner(t, lg, fixedClock(logTime.Add(-time.Hour)))
	var err error
	if f.stamper, err = NewStamper(f.serverKey, f.server, f.dir, s); err != nil {
		t.Fatal(err)
	}
	dir := testkeys.Directory(t, "server", "1000")
	var prev time.Time
	for i := range 3 {
		req := newRequest("1000", byte(i), byte(i))
		reply, st, err := f.stamper.Handle(f.r1000.PeerID, f.seal(t, req))
		if err != nil {
			t.Fatal(err)
		}
		if st.Serial != uint64(i) || !st.Time.After(prev) {
			t.Fatalf("stamp %d: serial %d time %s after %s", i, st.Serial, protocol.FormatTime(st.Time), protocol.FormatTime(prev))
		}
		prev = st.Time
		leaf, err := lg.Leaf(st.Serial)
		if err != nil || !bytes.Equal(leaf, st.EncodeLeaf()) {
			t.Fatalf("stamp %d is not the log's leaf %d (%v)", i, st.Serial, err)
		}
		got, sig, err := protocol.OpenStampResponse(protocol.EncodeStampResponse(protocol.StatusOK, reply), testkeys.Private(t, "1000"), req, testnet.Trust(t, dir), f.server, f.r1000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := protocol.NewReceipt(got, sig).Verify(testnet.Trust(t, dir), req.DocumentHash); err != nil {
			t.Fatalf("v1 receipt of a logged stamp: %v", err)
		}
	}
	// A one-shot stamp does not wait for a tree head, but a later head
	// covers its leaf all the same.
	if lg.Size() != 3 {
		t.Fatalf("log size %d, want 3", lg.Size())
	}
	deadline := time.Now().Add(10 * time.Second)
	for h := s.Head(); h == nil || h.Head.Size != 3; h = s.Head() {
		if time.Now().After(deadline) {
			t.Fatalf("no head covers the one-shot stamps within 10 s: %+v", h)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A closed authority refuses with shutting-down.
	s.Close()
	_, _, err = f.stamper.Handle(f.r1000.PeerID, f.seal(t, newRequest("1000", 9, 9)))
	if se := refusal(t, err); se.Status != protocol.StatusShuttingDown {
		t.Fatalf("refusal %v, want %s", se, protocol.StatusShuttingDown)
	}
}
