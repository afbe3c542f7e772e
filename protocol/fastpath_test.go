package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// Tests of the shortcuts of the stamp hot paths: each must give exactly
// what the general path gives.

// EncodeWith with the peer IDs' strings is EncodeLeaf / Encode.
func TestEncodeWithIsEncode(t *testing.T) {
	st := sampleStatement(t)
	for _, tag := range []string{LeafTag, StatementTag} {
		if got, want := st.EncodeWith(tag, st.RequesterPeer.String(), st.ServerPeer.String()), st.encode(tag); !bytes.Equal(got, want) {
			t.Fatalf("%s: encodeWith differs from encode", tag)
		}
	}
}

// A parser that knows the parties returns what ParseLeaf returns, for
// leaves naming them, others, or nothing valid, and for non-canonical
// spellings of their peer IDs.
func TestKnownPartiesParseLikeParseLeaf(t *testing.T) {
	req, srv, other := entry(t, "1000"), entry(t, "server"), entry(t, "outsider")
	base := sampleStatement(t)
	cidPeer := peer.ToCid(req.PeerID).String()
	fieldsOf := func(s *Statement) [][]byte {
		return [][]byte{[]byte(s.HashAlgorithm), s.DocumentHash, []byte(FormatTime(s.Time)), u64(s.Serial),
			[]byte(s.RequesterID), []byte(s.RequesterPeer.String()), []byte(s.ServerID), []byte(s.ServerPeer.String()), s.Nonce}
	}
	withField := func(i int, v string) []byte {
		f := fieldsOf(base)
		f[i] = []byte(v)
		return EncodeRecord(LeafTag, f...)
	}
	edit := func(fn func(*Statement)) []byte {
		c := cloneStatement(base)
		fn(c)
		return c.EncodeLeaf()
	}
	leaves := map[string][]byte{
		"ours":                 base.EncodeLeaf(),
		"another time":         edit(func(s *Statement) { s.Time = s.Time.Add(time.Second) }),
		"the first time again": base.EncodeLeaf(),
		"other requester":      edit(func(s *Statement) { s.RequesterID, s.RequesterPeer = other.ID, other.PeerID }),
		"other server":         edit(func(s *Statement) { s.ServerID, s.ServerPeer = other.ID, other.PeerID }),
		"parties swapped": edit(func(s *Statement) {
			s.RequesterID, s.RequesterPeer, s.ServerID, s.ServerPeer = srv.ID, srv.PeerID, req.ID, req.PeerID
		}),
		"peer ID as a CID":        withField(5, cidPeer),
		"peer ID one char short":  withField(5, req.PeerID.String()[1:]),
		"bad peer ID":             withField(7, "not a peer"),
		"bad id":                  withField(4, "../1000"),
		"id with trailing dot":    withField(6, string(srv.ID)+"."),
		"time not canonical":      withField(2, FormatTime(base.Time)[:29]+"Z"),
		"time not canonical, too": withField(2, "2026-01-02T03:04:05.123456789+00:00"),
		"bad hash algorithm":      withField(0, "sha-1"),
		"short nonce":             withField(8, "nonce"),
		"not a leaf":              base.Encode(),
		"garbage":                 []byte("leaf"),
	}
	known := NewKnownParties(req, srv)
	// Twice, so that the remembered time is used the second time.
	for round := range 2 {
		for name, leaf := range leaves {
			want, wantErr := ParseLeaf(leaf)
			got, gotErr := parseStatement(leaf, LeafTag, known)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, %s: got %+v, %v; ParseLeaf gives %+v, %v", round, name, got, gotErr, want, wantErr)
			}
			if wantErr != nil && !errors.Is(gotErr, ErrMalformed) {
				t.Fatalf("%s: error %v is not ErrMalformed", name, gotErr)
			}
		}
	}
	if known.lastTime == "" {
		t.Fatal("no time remembered")
	}
	// Entries that would not survive parsing are not taken as known.
	if k := NewKnownParties(identity.Entry{ID: "../x", PeerID: req.PeerID}, identity.Entry{ID: "ok", PeerID: ""}); len(k.parties) != 0 {
		t.Fatalf("invalid entries known: %+v", k.parties)
	}
}

// The head cache's per-key digest is per key: a head verified under one
// key is not taken as verified under another, or under the same key
// object once its modulus changes.
func TestHeadCacheKeyDigest(t *testing.T) {
	h := &TreeHead{ServerID: "server", ServerPeer: entry(t, "server").PeerID, Size: 3, Root: [32]byte{1}, Time: sampleTime}
	enc := h.Encode()
	sig := signAs(t, "server", enc)
	pub := testkeys.Private(t, "server").PublicKey // a copy we may change
	other := &testkeys.Private(t, "outsider").PublicKey
	c := NewHeadCache(8)
	for range 2 {
		if err := c.verify(&pub, enc, sig); err != nil {
			t.Fatal(err)
		}
		if err := c.verify(other, enc, sig); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("head verified under another key: %v", err)
		}
	}
	pub.N = other.N
	if err := c.verify(&pub, enc, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("cached head verified after the key's modulus changed: %v", err)
	}
	if len(c.checked) != 1 {
		t.Fatalf("%d heads cached, want 1", len(c.checked))
	}
}

// Callers asking the cache about one head at the same time share one
// verification; a bad signature fails for every one of them and is not
// remembered.
func TestHeadCacheConcurrentVerifiesOnce(t *testing.T) {
	h := &TreeHead{ServerID: "server", ServerPeer: entry(t, "server").PeerID, Size: 5, Root: [32]byte{2}, Time: sampleTime}
	enc := h.Encode()
	sig := signAs(t, "server", enc)
	pub := &testkeys.Private(t, "server").PublicKey
	c := NewHeadCache(8)
	run := func(sig []byte) []error {
		errs := make([]error, 16)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				<-start
				errs[i] = c.verify(pub, enc, sig)
			})
		}
		close(start)
		wg.Wait()
		return errs
	}
	for i, err := range run(sig) {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if n := c.verified.Load(); n != 1 {
		t.Fatalf("%d verifications of one head, want 1", n)
	}
	for i, err := range run(flip(sig, 3)) {
		if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("caller %d with a bad signature: %v", i, err)
		}
	}
	before := c.verified.Load()
	if err := c.verify(pub, enc, flip(sig, 3)); !errors.Is(err, ErrBadSignature) || c.verified.Load() != before+1 {
		t.Fatalf("a bad signature was remembered: %v", err)
	}
	if len(c.running) != 0 || len(c.checked) != 1 {
		t.Fatalf("%d running, %d checked after all callers returned", len(c.running), len(c.checked))
	}
}

// encodeSessionReply writes the record EncodeRecord writes, for stamps
// with and without the signer's leaf bytes, and proofs of any length.
func TestEncodeSessionReplyIsRecord(t *testing.T) {
	st := sampleStatement(t)
	h := &TreeHead{ServerID: st.ServerID, ServerPeer: st.ServerPeer, Size: 43, Root: [32]byte{9}, Time: sampleTime}
	sth := &SignedTreeHead{Head: h, Encoded: h.Encode(), Signature: fill(512, 0x51)}
	for n := range 4 {
		proof := make([][32]byte, n)
		flat := []byte{}
		for i := range proof {
			proof[i][0] = byte(i + 1)
			flat = append(flat, proof[i][:]...)
		}
		want := EncodeRecord(SessionReplyTag, u64(7), []byte(StatusOK), st.EncodeLeaf(), flat, sth.Encoded, sth.Signature)
		for _, leaf := range [][]byte{nil, st.EncodeLeaf()} {
			ls := &LogStamp{Statement: st, Head: sth, Leaf: leaf}
			for _, p := range proof {
				ls.Proof = append(ls.Proof, p)
			}
			got := EncodeSessionReply(7, ls, StatusOK, "")
			if !bytes.Equal(got, want) || cap(got) != len(got) {
				t.Fatalf("proof of %d hashes, leaf given %v: reply differs from the record (len %d cap %d, want len %d)", n, leaf != nil, len(got), cap(got), len(want))
			}
			rep, err := ParseSessionReply(got)
			if err != nil || rep.ID != 7 || !bytes.Equal(rep.Leaf, st.EncodeLeaf()) || len(rep.Proof) != n || !bytes.Equal(rep.Sig, sth.Signature) {
				t.Fatalf("reply does not parse back: %+v, %v", rep, err)
			}
		}
	}
}

// A refusal has one encoding: its proof, head and signature are empty.
func TestParseSessionReplyRefusalIsCanonical(t *testing.T) {
	ok := EncodeRecord(SessionReplyTag, u64(3), []byte(StatusInternal), []byte("no"), nil, nil, nil)
	if r, err := ParseSessionReply(ok); err != nil || r.Status != StatusInternal || r.Message != "no" {
		t.Fatalf("refusal: %+v, %v", r, err)
	}
	for i := 4; i <= 6; i++ {
		fields := [][]byte{u64(3), []byte(StatusInternal), []byte("no"), nil, nil, nil}
		fields[i-1] = []byte{1}
		if _, err := ParseSessionReply(EncodeRecord(SessionReplyTag, fields...)); !errors.Is(err, ErrMalformed) {
			t.Errorf("refusal with field %d set: %v, want ErrMalformed", i, err)
		}
	}
}
