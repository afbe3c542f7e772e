package protocol

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// Witnesses are ordinary ids: the tests use the test keys "1000" and
// "2000" as witnesses, "outsider" as a witness no policy requires.

// witnessDir holds every test key.
func witnessDir(t testing.TB) *identity.Directory {
	t.Helper()
	return testkeys.Directory(t, "server", "1000", "2000", "outsider")
}

// headAs is a tree head in the name of the test identity id, signed with
// its key.
func headAs(t testing.TB, id identity.ID, size uint64, root tlog.Hash, at time.Time) *SignedTreeHead {
	t.Helper()
	e := entry(t, id)
	return signHead(t, id, &TreeHead{ServerID: e.ID, ServerPeer: e.PeerID, Size: size, Root: root, Time: at})
}

// signHead signs h with the key of the test identity key.
func signHead(t testing.TB, key identity.ID, h *TreeHead) *SignedTreeHead {
	t.Helper()
	enc := h.Encode()
	return &SignedTreeHead{Head: h, Encoded: enc, Signature: signAs(t, key, enc)}
}

// cosignAs is witness w's cosignature of head at at, signed with w's key.
func cosignAs(t testing.TB, w identity.ID, head *TreeHead, at time.Time) *SignedCosignature {
	t.Helper()
	return signCosig(t, w, NewCosignature(head, entry(t, w), at))
}

// signCosig signs c with the key of the test identity key.
func signCosig(t testing.TB, key identity.ID, c *Cosignature) *SignedCosignature {
	t.Helper()
	enc := c.Encode()
	return &SignedCosignature{Cosig: c, Encoded: enc, Signature: signAs(t, key, enc)}
}

func hashOf(b byte) tlog.Hash {
	var h tlog.Hash
	for i := range h {
		h[i] = b
	}
	return h
}

// policyOf requires k cosignatures of ids within tolerance.
func policyOf(t testing.TB, k int, tolerance time.Duration, ids ...identity.ID) *WitnessPolicy {
	t.Helper()
	p, err := NewWitnessPolicy(witnessDir(t), k, tolerance, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantErr(t testing.TB, err, sentinel error, msg string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("accepted; want %v containing %q", sentinel, msg)
	case sentinel != nil && !errors.Is(err, sentinel):
		t.Fatalf("error %q does not wrap %v", err, sentinel)
	case !strings.Contains(err.Error(), msg):
		t.Fatalf("error %q does not contain %q", err, msg)
	}
}

func sampleCosignature(t testing.TB) *Cosignature {
	t.Helper()
	head := headAs(t, "server", 7, hashOf(0xcc), sampleTime).Head
	return NewCosignature(head, entry(t, "2000"), sampleTime.Add(1500*time.Millisecond))
}

func TestCosignatureRoundTrip(t *testing.T) {
	c := sampleCosignature(t)
	srv, w := entry(t, "server"), entry(t, "2000")
	want := Cosignature{ServerID: "server", ServerPeer: srv.PeerID, Size: 7, Root: hashOf(0xcc), HeadTime: sampleTime,
		WitnessID: "2000", WitnessPeer: w.PeerID, Time: sampleTime.Add(1500 * time.Millisecond)}
	if *c != want {
		t.Fatalf("NewCosignature = %+v, want %+v", c, want)
	}
	enc := c.Encode()
	if !bytes.HasPrefix(enc, EncodeRecord(CosignatureTag)) {
		t.Fatalf("encoding does not start with the tag %s", CosignatureTag)
	}
	f, err := DecodeRecord(enc, CosignatureTag, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range [][]byte{[]byte("server"), []byte(srv.PeerID.String()), u64(7), want.Root[:], []byte(FormatTime(sampleTime)),
		[]byte("2000"), []byte(w.PeerID.String()), []byte(FormatTime(want.Time))} {
		if !bytes.Equal(f[i], w) {
			t.Errorf("field %d is %q, want %q", i+1, f[i], w)
		}
	}
	back, err := ParseCosignature(enc)
	if err != nil {
		t.Fatal(err)
	}
	if *back != want || !back.HeadTime.Equal(want.HeadTime) || !back.Time.Equal(want.Time) {
		t.Fatalf("parsed %+v, want %+v", back, want)
	}
	if !bytes.Equal(back.Encode(), enc) {
		t.Fatal("does not re-encode to the same bytes")
	}

	sc, err := SignCosignature(testkeys.Private(t, "2000"), c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sc.Encoded, enc) || sc.Cosig != c {
		t.Fatal("SignCosignature did not sign the encoding of c")
	}
	if err := VerifySignature(w.PublicKey, enc, sc.Signature); err != nil {
		t.Fatalf("the signature does not verify with the witness's key: %v", err)
	}
	if err := VerifySignature(srv.PublicKey, enc, sc.Signature); err == nil {
		t.Fatal("the signature verifies with another key")
	}
}

func TestCosignatureOf(t *testing.T) {
	head := headAs(t, "server", 7, hashOf(0xcc), sampleTime).Head
	c := NewCosignature(head, entry(t, "2000"), sampleTime)
	if !c.Of(head) {
		t.Fatal("a cosignature is not of its own head")
	}
	for name, edit := range map[string]func(h *TreeHead){
		"server id":      func(h *TreeHead) { h.ServerID = "1000" },
		"server peer ID": func(h *TreeHead) { h.ServerPeer = entry(t, "outsider").PeerID },
		"size":           func(h *TreeHead) { h.Size++ },
		"root":           func(h *TreeHead) { h.Root[31] ^= 1 },
		"time":           func(h *TreeHead) { h.Time = h.Time.Add(time.Nanosecond) },
	} {
		h := *head
		edit(&h)
		if c.Of(&h) {
			t.Errorf("a cosignature is of a head with another %s", name)
		}
	}
	// The same instant in another location is the same head time.
	h := *head
	h.Time = h.Time.In(time.FixedZone("x", 3600))
	if !c.Of(&h) {
		t.Error("Of compares times with == instead of Equal")
	}
}

func TestParseCosignatureMalformed(t *testing.T) {
	c := sampleCosignature(t)
	srv := entry(t, "server")
	fields := func(edit func(f [][]byte) [][]byte) []byte {
		f := [][]byte{[]byte(c.ServerID), []byte(c.ServerPeer.String()), u64(c.Size), c.Root[:], []byte(FormatTime(c.HeadTime)),
			[]byte(c.WitnessID), []byte(c.WitnessPeer.String()), []byte(FormatTime(c.Time))}
		return EncodeRecord(CosignatureTag, edit(f)...)
	}
	set := func(i int, v []byte) func(f [][]byte) [][]byte {
		return func(f [][]byte) [][]byte { f[i] = v; return f }
	}
	enc := c.Encode()
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty server id", fields(set(0, nil)), "cosignature server: invalid id"},
		{"server id with a slash", fields(set(0, []byte("a/b"))), "cosignature server: invalid id"},
		{"server peer ID as CIDv1", fields(set(1, []byte(peer.ToCid(srv.PeerID).String()))), "cosignature server peer ID: invalid peer ID"},
		{"size of 7 bytes", fields(set(2, fill(7, 0))), "tree size is 7 bytes, want 8"},
		{"root of 31 bytes", fields(set(3, fill(31, 0))), "root hash is 31 bytes, want 32"},
		{"root of 33 bytes", fields(set(3, fill(33, 0))), "root hash is 33 bytes, want 32"},
		{"head time with three digits", fields(set(4, []byte("2026-01-02T03:04:05.123Z"))), "nine fractional digits"},
		{"empty witness id", fields(set(5, nil)), "cosignature witness: invalid id"},
		{"witness id ..", fields(set(5, []byte(".."))), "cosignature witness: invalid id"},
		{"witness peer ID not base58", fields(set(6, []byte("0OIl"))), "cosignature witness peer ID: invalid peer ID"},
		{"time with an offset", fields(set(7, []byte("2026-01-02T03:04:05.123456789+00:00"))), "nine fractional digits"},
		{"7 fields", fields(func(f [][]byte) [][]byte { return f[:7] }), "7 fields, want 8"},
		{"9 fields", fields(func(f [][]byte) [][]byte { return append(f, nil) }), "9 fields, want 8"},
		{"tree head tag", EncodeRecord(TreeHeadTag, []byte("server"), []byte(srv.PeerID.String()), u64(7), fill(32, 0), []byte(FormatTime(sampleTime))), `record type "tsnode-tree-head-v1", want "tsnode-cosignature-v1"`},
		{"trailing byte", append(bytes.Clone(enc), 0), "truncated field length"},
		{"last byte cut", enc[:len(enc)-1], ""},
		{"empty", nil, "empty record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCosignature(tc.in)
			if got != nil {
				t.Errorf("returned %+v with the error", got)
			}
			wantErr(t, err, ErrMalformed, tc.msg)
		})
	}
}

func TestNewWitnessPolicy(t *testing.T) {
	dir := witnessDir(t)
	p, err := NewWitnessPolicy(dir, 1, time.Minute, "2000", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if p.K() != 1 || !slices.Equal(p.Witnesses(), []identity.ID{"1000", "2000"}) {
		t.Fatalf("K %d, witnesses %v", p.K(), p.Witnesses())
	}
	if _, err := NewWitnessPolicy(dir, 2, 0, "1000", "2000"); err != nil {
		t.Fatalf("k = n, tolerance 0: %v", err)
	}
	for _, tc := range []struct {
		name      string
		k         int
		tolerance time.Duration
		ids       []identity.ID
		msg       string
	}{
		{"unknown id", 1, time.Minute, []identity.ID{"1000", "3000"}, `witness "3000" has no public key in the identity directory`},
		{"k 0", 0, time.Minute, []identity.ID{"1000"}, "0 cosignatures required: want at least 1"},
		{"k -1", -1, time.Minute, []identity.ID{"1000"}, "-1 cosignatures required: want at least 1"},
		{"k > n", 3, time.Minute, []identity.ID{"1000", "2000"}, "3 cosignatures required from 2 witnesses"},
		{"no witness", 1, time.Minute, nil, "1 cosignatures required from 0 witnesses"},
		{"a witness named twice counts once", 2, time.Minute, []identity.ID{"1000", "1000"}, "2 cosignatures required from 1 witnesses"},
		{"negative tolerance", 1, -time.Nanosecond, []identity.ID{"1000"}, "cosignature time tolerance -1ns: want 0 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewWitnessPolicy(dir, tc.k, tc.tolerance, tc.ids...)
			if p != nil {
				t.Error("returned a policy with the error")
			}
			wantErr(t, err, nil, tc.msg)
		})
	}
}

func TestCheckCosignature(t *testing.T) {
	head := headAs(t, "server", 7, hashOf(0xcc), sampleTime).Head
	p := policyOf(t, 2, time.Minute, "1000", "2000")
	at := sampleTime.Add(10 * time.Second)

	good := cosignAs(t, "2000", head, at)
	sc, err := p.CheckCosignature(head, good.Encoded, good.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Cosig.WitnessID != "2000" || !bytes.Equal(sc.Encoded, good.Encoded) || !bytes.Equal(sc.Signature, good.Signature) {
		t.Fatalf("returned %+v", sc)
	}
	for _, d := range []time.Duration{time.Minute, -time.Minute, 0} {
		c := cosignAs(t, "1000", head, sampleTime.Add(d))
		if _, err := p.CheckCosignature(head, c.Encoded, c.Signature); err != nil {
			t.Errorf("cosigned %v from the head's time, tolerance 1m: %v", d, err)
		}
	}

	other := *head
	other.Size = 8
	w2 := entry(t, "2000")
	for _, tc := range []struct {
		name string
		c    *SignedCosignature
		msg  string
	}{
		{"not a required witness", cosignAs(t, "outsider", head, at), "outsider is not one of the witnesses required (1000, 2000)"},
		{"the server itself", cosignAs(t, "server", head, at), "server is not one of the witnesses required"},
		{"wrong peer ID", signCosig(t, "2000", &Cosignature{ServerID: head.ServerID, ServerPeer: head.ServerPeer, Size: head.Size, Root: head.Root,
			HeadTime: head.Time, WitnessID: "1000", WitnessPeer: w2.PeerID, Time: at}), "signed as 1000 by peer " + w2.PeerID.String()},
		{"another head", cosignAs(t, "2000", &other, at), "2000 cosigned the head of size 8 at " + FormatTime(head.Time) + ", not this head (size 7"},
		{"too late", cosignAs(t, "2000", head, sampleTime.Add(time.Minute+time.Nanosecond)), "from the head's time"},
		{"too early", cosignAs(t, "2000", head, sampleTime.Add(-time.Minute-time.Nanosecond)), "(tolerance 1m0s)"},
		{"signature changed", &SignedCosignature{Encoded: good.Encoded, Signature: flip(good.Signature, 9)}, "the cosignature of 2000 does not verify with its key"},
		{"signed by another key", signCosig(t, "outsider", NewCosignature(head, w2, at)), "does not verify with its key"},
		{"no signature", &SignedCosignature{Encoded: good.Encoded}, "does not verify"},
		{"malformed", &SignedCosignature{Encoded: good.Encoded[:len(good.Encoded)-1], Signature: good.Signature}, "malformed message"},
		{"a tree head", &SignedCosignature{Encoded: head.Encode(), Signature: good.Signature}, "record type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := p.CheckCosignature(head, tc.c.Encoded, tc.c.Signature)
			if sc != nil {
				t.Error("returned a cosignature with the error")
			}
			wantErr(t, err, ErrBadCosignature, tc.msg)
			if VerdictFor(err) != VerdictNotWitnessed {
				t.Errorf("verdict %s", VerdictFor(err))
			}
		})
	}
	// Tolerance 0: only the head's own time.
	p0 := policyOf(t, 1, 0, "2000")
	exact := cosignAs(t, "2000", head, sampleTime)
	if _, err := p0.CheckCosignature(head, exact.Encoded, exact.Signature); err != nil {
		t.Errorf("tolerance 0, same time: %v", err)
	}
	if _, err := p0.CheckCosignature(head, good.Encoded, good.Signature); !errors.Is(err, ErrBadCosignature) {
		t.Errorf("tolerance 0, 10 s later: %v", err)
	}
}

func TestCheckCosignatures(t *testing.T) {
	head := headAs(t, "server", 7, hashOf(0xcc), sampleTime).Head
	at := sampleTime.Add(time.Second)
	c1, c2 := cosignAs(t, "1000", head, at), cosignAs(t, "2000", head, at)
	c1b := cosignAs(t, "1000", head, at.Add(time.Second)) // 1000 again, another time
	outsider := cosignAs(t, "outsider", head, at)
	bad := &SignedCosignature{Cosig: c2.Cosig, Encoded: c2.Encoded, Signature: flip(c2.Signature, 3)}
	p2 := policyOf(t, 2, time.Minute, "1000", "2000")

	good, err := p2.CheckCosignatures(head, []*SignedCosignature{c2, c1})
	if err != nil || len(good) != 2 || good[0].Cosig.WitnessID != "2000" || good[1].Cosig.WitnessID != "1000" {
		t.Fatalf("two valid: %v, %d counted", err, len(good))
	}
	good, err = p2.CheckCosignatures(head, []*SignedCosignature{outsider, c1, bad, c2})
	if err != nil || len(good) != 2 {
		t.Fatalf("two valid among others: %v, %d counted", err, len(good))
	}

	for _, tc := range []struct {
		name   string
		cosigs []*SignedCosignature
		n      int
		msgs   []string
	}{
		{"none", nil, 0, []string{"0 valid cosignatures of the head of size 7, 2 required from 1000, 2000"}},
		{"one", []*SignedCosignature{c1}, 1, []string{"1 valid cosignatures of the head of size 7, 2 required"}},
		{"the same twice", []*SignedCosignature{c1, c1}, 1, []string{"1 valid cosignatures", "1000 cosigned twice (counted once)"}},
		{"one witness at two times", []*SignedCosignature{c1, c1b}, 1, []string{"1000 cosigned twice (counted once)"}},
		{"one valid, one badly signed", []*SignedCosignature{c1, bad}, 1, []string{"bad cosignature: the cosignature of 2000 does not verify"}},
		{"one valid, one not required", []*SignedCosignature{outsider, c1}, 1, []string{"outsider is not one of the witnesses required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, err := p2.CheckCosignatures(head, tc.cosigs)
			if len(good) != tc.n {
				t.Errorf("%d counted, want %d", len(good), tc.n)
			}
			for _, m := range tc.msgs {
				wantErr(t, err, ErrNotWitnessed, m)
			}
			if VerdictFor(err) != VerdictNotWitnessed || !IsVerificationError(err) {
				t.Errorf("verdict %s", VerdictFor(err))
			}
		})
	}
	p1 := policyOf(t, 1, time.Minute, "1000", "2000")
	if good, err := p1.CheckCosignatures(head, []*SignedCosignature{bad, c1, c1}); err != nil || len(good) != 1 {
		t.Fatalf("K 1: %v, %d counted", err, len(good))
	}
}
