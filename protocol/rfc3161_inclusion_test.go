package protocol

import (
	"crypto"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// treeOf is the memTree (witness_test.go) of leaves.
func treeOf(t testing.TB, leaves ...[]byte) *memTree {
	m := &memTree{}
	for _, l := range leaves {
		hs, err := tlog.StoredHashes(m.n, l, m)
		if err != nil {
			t.Fatal(err)
		}
		m.stored = append(m.stored, hs...)
		m.n++
	}
	return m
}

func headOf(t testing.TB, id identity.ID, m *memTree, size int64, at time.Time) *SignedTreeHead {
	root, err := tlog.TreeHash(size, m)
	if err != nil {
		t.Fatal(err)
	}
	sth, err := SignTreeHead(testkeys.Private(t, id), &TreeHead{ServerID: id, ServerPeer: entry(t, id).PeerID, Size: uint64(size), Root: root, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	return sth
}

func TestCheckTSAInclusion(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	doc := []byte("doc")
	trust := trustOf(t, testkeys.Directory(t, "server", "1000"), "server", "1000")
	tok, err := trust.CheckTSAToken(tokenFor(t, signerAt(t, "server", now), doc, crypto.SHA256, now, true), nil, digestOf(doc))
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := digestOf(doc)(crypto.SHA256)
	leafOf := func(imprint []byte) []byte {
		return (&TSALeaf{Hash: crypto.SHA256, Imprint: imprint, Time: now, Serial: 7, Policy: DefaultTSAPolicy, Nonce: []byte{1, 2},
			Via: TSAViaHTTP, ServerID: "server", ServerPeer: entry(t, "server").PeerID}).Encode()
	}
	leaves := make([][]byte, 9)
	for i := range leaves {
		leaves[i] = []byte{byte(i)}
	}
	leaves[7] = leafOf(sum)
	m := treeOf(t, leaves...)
	head := headOf(t, "server", m, 9, now.Add(time.Second))
	proof, err := tlog.ProveRecord(9, 7, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trust.CheckTSAInclusion(tok, head, leaves[7], proof); err != nil {
		t.Fatalf("the token's leaf: %v", err)
	}
	f := NewTSAInclusion(head, 7, leaves[7], proof)
	back, err := ParseTSAInclusion(f.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if h, l, p, err := back.Decode(); err != nil || !SameHead(h, head) {
		t.Fatalf("the file does not round-trip: %v", err)
	} else if _, err := trust.CheckTSAInclusion(tok, h, l, p); err != nil {
		t.Fatal(err)
	}

	short := headOf(t, "server", m, 7, now.Add(time.Second))
	if _, err := trust.CheckTSAInclusion(tok, short, leaves[7], nil); !errors.Is(err, ErrTokenNotLogged) {
		t.Fatalf("a head that does not cover the serial: %v", err)
	}
	if _, err := trust.CheckTSAInclusion(tok, head, leaves[6], proof); !errors.Is(err, ErrBadProof) {
		t.Fatalf("another leaf with the proof of 7: %v", err)
	}
	other := append([]byte{}, sum...)
	other[0] ^= 1
	leaves[7] = leafOf(other) // another token with the same serial
	m2 := treeOf(t, leaves...)
	proof2, _ := tlog.ProveRecord(9, 7, m2)
	if _, err := trust.CheckTSAInclusion(tok, headOf(t, "server", m2, 9, now.Add(time.Second)), leaves[7], proof2); !errors.Is(err, ErrTokenNotLogged) {
		t.Fatalf("the leaf of another token: %v", err)
	}
	if _, err := trust.CheckTSAInclusion(tok, headOf(t, "1000", m, 9, now.Add(time.Second)), leaves[7], proof); !errors.Is(err, ErrDifferentServers) {
		t.Fatalf("another authority's head: %v", err)
	}
	if _, err := trustOf(t, testkeys.Directory(t, "server", "1000"), "1000").CheckTSAInclusion(tok, head, leaves[7], proof); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("an untrusted head: %v", err)
	}
}
