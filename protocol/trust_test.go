package protocol

import (
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

func TestNewTrustRefuses(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	if _, err := NewTrust(dir, nil); err == nil {
		t.Error("no authority: accepted")
	}
	_, err := NewTrust(dir, nil, "server", "2000")
	if err == nil || !strings.Contains(err.Error(), `"2000"`) {
		t.Errorf("authority without a key: %v, want an error naming 2000", err)
	}
	var none *Trust
	if err := none.CheckAuthority("server"); !errors.Is(err, ErrUntrustedSigner) {
		t.Errorf("nil trust: %v, want ErrUntrustedSigner", err)
	}
}

// selfSigned is the first attack of issue 7: requester 1000 signs its own
// statement, dated 2001, naming itself as the server, in the v1 format.
// Its key is in every directory, but it is no authority.
func selfSigned(t testing.TB, documentHash []byte) *Receipt {
	t.Helper()
	req := entry(t, "1000")
	st := &Statement{
		HashAlgorithm: HashAlgorithm,
		DocumentHash:  documentHash,
		Time:          time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC),
		Serial:        1,
		RequesterID:   req.ID,
		RequesterPeer: req.PeerID,
		ServerID:      req.ID,
		ServerPeer:    req.PeerID,
		Nonce:         fill(NonceSize, 7),
	}
	enc := st.Encode()
	return NewReceipt(st, signAs(t, "1000", enc))
}

func TestSelfSignedReceiptRefused(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000", "2000")
	doc := fill(HashSize, 0x42)
	r := viaJSON(t, selfSigned(t, doc))
	_, err := r.Verify(trustOf(t, dir), doc)
	if !errors.Is(err, ErrUntrustedSigner) || !strings.Contains(err.Error(), "untrusted signer: 1000 is not a trusted authority") {
		t.Fatalf("self-signed receipt: %v, want untrusted signer naming 1000", err)
	}
	if got := VerdictFor(err); got != VerdictUntrustedSigner {
		t.Errorf("verdict %q, want %q", got, VerdictUntrustedSigner)
	}
	// The signature itself is good: whoever chooses to trust 1000 as an
	// authority accepts it, so the refusal above is the policy's alone.
	if _, err := r.Verify(trustOf(t, dir, "1000"), doc); err != nil {
		t.Fatalf("trusting 1000 explicitly: %v", err)
	}
}

// TestReceiptOfAnotherServerRefused is the second attack: a stock server
// run under an enrolled id that is not an authority logs and signs a v2
// receipt.
func TestReceiptOfAnotherServerRefused(t *testing.T) {
	lg := openLog(t, t.TempDir())
	st := newSignerAs(t, lg, "1000", nil).batch(t, entry(t, "2000"), 1)[0]
	r := viaJSON(t, st.Receipt())
	dir := testkeys.Directory(t, "server", "1000", "2000")
	if _, err := r.Verify(trustOf(t, dir), docHash(1)); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("v2 receipt of server 1000: %v, want ErrUntrustedSigner", err)
	}
	if _, err := r.Verify(trustOf(t, dir, "1000"), docHash(1)); err != nil {
		t.Fatalf("trusting 1000 explicitly: %v", err)
	}
}

// rotated is a directory and trust in which "server" has rotated from the
// test key of "server" (now retired at rotatedAt) to that of "outsider".
type rotated struct {
	old, cur  identity.Entry
	trust     *Trust
	rotatedAt time.Time
}

func newRotated(t testing.TB, rotatedAt time.Time) *rotated {
	t.Helper()
	cur := entry(t, "outsider")
	cur.ID = "server"
	dir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"server": cur.PublicKey, "1000": entry(t, "1000").PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	old := entry(t, "server")
	retired := []RetiredKey{
		{ID: old.ID, PublicKey: old.PublicKey, PeerID: old.PeerID, RetiredAt: rotatedAt, Successor: cur.PeerID},
		// A retired key of a non-authority makes it no authority.
		{ID: "1000", PublicKey: entry(t, "2000").PublicKey, PeerID: entry(t, "2000").PeerID, RetiredAt: rotatedAt.Add(time.Hour)},
	}
	trust, err := NewTrust(dir, retired, "server")
	if err != nil {
		t.Fatal(err)
	}
	return &rotated{old: old, cur: cur, trust: trust, rotatedAt: rotatedAt}
}

func TestRetiredKeyV1(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rot := newRotated(t, at)
	statement := func(by identity.Entry, signer identity.ID, when time.Time) *Receipt {
		st := sampleStatement(t)
		st.Time, st.ServerID, st.ServerPeer = when, by.ID, by.PeerID
		enc := st.Encode()
		return viaJSON(t, NewReceipt(st, signAs(t, signer, enc)))
	}
	for _, c := range []struct {
		name string
		r    *Receipt
		want error
	}{
		{"old key, before the rotation", statement(rot.old, "server", at.Add(-time.Nanosecond)), nil},
		{"old key, at the rotation", statement(rot.old, "server", at), ErrRetiredKey},
		{"old key, after the rotation", statement(rot.old, "server", at.Add(time.Hour)), ErrRetiredKey},
		{"new key, after the rotation", statement(rot.cur, "outsider", at.Add(time.Hour)), nil},
		{"new key, before the rotation", statement(rot.cur, "outsider", at.Add(-time.Hour)), nil},
		{"old peer named, new key signed", statement(rot.old, "outsider", at.Add(-time.Hour)), ErrBadSignature},
		{"new peer named, old key signed", statement(rot.cur, "server", at.Add(time.Hour)), ErrBadSignature},
		{"a key that never was the server's", statement(entry(t, "2000"), "2000", at.Add(-time.Hour)), ErrUntrustedSigner},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.r.Verify(rot.trust, nil)
			if c.want == nil && err != nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// The refusal says when the key was retired and what replaced it.
	_, err := statement(rot.old, "server", at).Verify(rot.trust, nil)
	for _, want := range []string{FormatTime(at), rot.cur.PeerID.String(), rot.old.PeerID.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("retired-key error %q does not say %s", err, want)
		}
	}
	if got := VerdictFor(err); got != VerdictRetiredKey {
		t.Errorf("verdict %q, want %q", got, VerdictRetiredKey)
	}
}

// TestRetiredKeyV2: a v2 receipt counts by its tree head's time.
func TestRetiredKeyV2(t *testing.T) {
	f := newLogFixture(t)
	r := viaJSON(t, f.stamps[1].Receipt())
	head := f.stamps[1].Head.Head.Time
	if _, err := r.Verify(newRotated(t, head.Add(time.Nanosecond)).trust, nil); err != nil {
		t.Fatalf("head made before the rotation: %v", err)
	}
	if _, err := r.Verify(newRotated(t, head).trust, nil); !errors.Is(err, ErrRetiredKey) {
		t.Fatalf("head made at the rotation: %v, want ErrRetiredKey", err)
	}
	// A consistency proof between heads of the old key, made before the
	// rotation, still holds.
	old, nw := f.stamps[0].Head, f.stamps[5].Head
	proof := treeProof(t, f.lg, old.Head.Size, nw.Head.Size)
	if err := newRotated(t, head.Add(time.Hour)).trust.CheckConsistency(old, nw, proof); err != nil {
		t.Fatalf("consistency of retired-key heads: %v", err)
	}
}

// viaJSON returns r as a verifier reads it: written and parsed again.
func viaJSON(t testing.TB, r *Receipt) *Receipt {
	t.Helper()
	p, err := ParseReceipt(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
