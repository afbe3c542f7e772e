package protocol

import (
	"bytes"
	"crypto"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// TestCheckLeaf: stamp and RFC 3161 leaves of one log are proved at
// their serials; another serial, a changed leaf, another server's leaf,
// a leaf dated after the head and a bad proof are refused.
func TestCheckLeaf(t *testing.T) {
	srv := entry(t, "server")
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	var leaves [][]byte
	for i := range 5 {
		if i%2 == 0 {
			st := sampleStatement(t)
			st.Serial, st.Time = uint64(i), at
			leaves = append(leaves, st.EncodeLeaf())
		} else {
			l := &TSALeaf{Hash: crypto.SHA256, Imprint: bytes.Repeat([]byte{byte(i)}, 32), Time: at, Serial: uint64(i),
				Policy: DefaultTSAPolicy, Via: TSAViaHTTP, ServerID: srv.ID, ServerPeer: srv.PeerID}
			leaves = append(leaves, l.Encode())
		}
	}
	m := &memTree{}
	for _, leaf := range leaves {
		hs, err := tlog.StoredHashes(m.n, leaf, m)
		if err != nil {
			t.Fatal(err)
		}
		m.stored = append(m.stored, hs...)
		m.n++
	}
	head := &TreeHead{ServerID: srv.ID, ServerPeer: srv.PeerID, Size: 5, Root: m.root(t, 5), Time: at.Add(time.Second)}
	proof := func(i int64) tlog.RecordProof {
		p, err := tlog.ProveRecord(5, i, m)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i, leaf := range leaves {
		info, err := CheckLeaf(leaf, uint64(i), head, proof(int64(i)))
		want := LeafKindStamp
		if i%2 == 1 {
			want = LeafKindRFC3161
		}
		if err != nil || info.Kind != want || info.Serial != uint64(i) || !info.Time.Equal(at) {
			t.Fatalf("leaf %d: %+v, %v; want a %s leaf", i, info, err, want)
		}
	}
	early := *head
	early.Time = at.Add(-time.Second)
	other := *head
	other.ServerID = "1000"
	for name, c := range map[string]struct {
		leaf   []byte
		serial uint64
		head   *TreeHead
		proof  tlog.RecordProof
		want   error
	}{
		"another serial's proof":       {leaves[1], 1, head, proof(2), ErrBadProof},
		"the leaf at another serial":   {leaves[1], 2, head, proof(2), ErrBadProof},
		"a changed leaf":               {flip(leaves[3], len(leaves[3])-40), 3, head, proof(3), ErrBadProof},
		"garbage":                      {[]byte("no record"), 0, head, proof(0), ErrBadProof},
		"a head of another server":     {leaves[0], 0, &other, proof(0), ErrWrongServerKey},
		"a head dated before the leaf": {leaves[0], 0, &early, proof(0), ErrBadProof},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := CheckLeaf(c.leaf, c.serial, c.head, c.proof); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}
