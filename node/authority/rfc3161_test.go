package authority

import (
	"bytes"
	"context"
	"crypto"
	"testing"

	"github.com/tsnode/tsnode/protocol"
)

// RFC 3161 leaves and stamps share the one log and its serials: each
// token's leaf is durable when its future resolves, with the serial and
// time the log gave it, and the full stamps beside it still verify.
func TestRFC3161LeavesShareTheLog(t *testing.T) {
	lg := openLog(t, t.TempDir())
	a := newAuthority(t, lg, nil)
	tr := trust(t)
	requester := entry(t, "1000")
	ctx := context.Background()
	var stamps []Future
	var tokens []Future
	for i := range 6 {
		stamps = append(stamps, a.Add(ctx, docEntry(requester, i)))
		tmpl := &protocol.TSALeaf{Hash: crypto.SHA384, Imprint: bytes.Repeat([]byte{byte(i)}, 48),
			Policy: protocol.DefaultTSAPolicy, Nonce: []byte{0x01, byte(i)}, Via: protocol.TSAViaHTTP}
		tokens = append(tokens, a.AddDurable(ctx, Entry{RFC3161: tmpl}))
		if i%2 == 0 { // the next Add sees a full stamp's future in another batch
			if _, err := await(t, tokens[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	serials := map[uint64]bool{}
	for i, f := range tokens {
		st, err := await(t, f)
		if err != nil {
			t.Fatal(err)
		}
		l := st.RFC3161
		if st.Statement != nil || l == nil || l.ServerID != "server" || l.Time.IsZero() || l.Imprint[0] != byte(i) {
			t.Fatalf("token %d: %+v", i, st)
		}
		stored, err := lg.Leaf(l.Serial)
		if err != nil || !bytes.Equal(stored, st.Leaf) {
			t.Fatalf("token %d: the log's leaf %d differs (%v)", i, l.Serial, err)
		}
		back, err := protocol.ParseTSALeaf(stored)
		if err != nil || back.Serial != l.Serial || !back.Time.Equal(l.Time) || !bytes.Equal(back.Nonce, l.Nonce) {
			t.Fatalf("token %d: leaf does not parse back: %v", i, err)
		}
		serials[l.Serial] = true
	}
	for i, f := range stamps {
		st, err := await(t, f)
		if err != nil {
			t.Fatal(err)
		}
		checkStamp(t, lg, tr, st, docEntry(requester, i))
		if serials[st.Statement.Serial] {
			t.Fatalf("stamp %d shares serial %d with a token", i, st.Statement.Serial)
		}
		serials[st.Statement.Serial] = true
	}
	if len(serials) != 12 || lg.Size() != 12 {
		t.Fatalf("%d distinct serials, log of %d; want 12", len(serials), lg.Size())
	}
}
