package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// Tests of the verification of heads signed by an online key (PROTOCOL.md
// §5.6): every check of the list there refuses what it must, as a bad
// server signature, and nothing else does.

// The window of the test delegations, around sampleTime.
var (
	onlineNB = sampleTime.Add(-time.Hour)
	onlineNA = sampleTime.Add(time.Hour)
)

// onlinePriv is the TEST-ONLY online key of id (testkeys.OnlineKey).
func onlinePriv(id identity.ID) *ecdsa.PrivateKey { return testkeys.OnlineKey(id) }

// delegateAs delegates priv for server over [nb, na], the delegation
// signed by the test key signer.
func delegateAs(t testing.TB, priv *ecdsa.PrivateKey, server identity.Entry, signer identity.ID, nb, na time.Time) *OnlineKey {
	t.Helper()
	if entry(t, signer).PeerID != server.PeerID {
		server.PublicKey = nil // else DelegateOnlineKey refuses the signature
	}
	k, err := DelegateOnlineKey(priv, server, nb, na, func(b []byte) ([]byte, error) { return signAs(t, signer, b), nil })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// onlineSign is the online key's signature of b (§5.6).
func onlineSign(t testing.TB, priv *ecdsa.PrivateKey, b []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(b)
	sig, err := priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err = lowS(sig); err != nil {
		t.Fatal(err)
	}
	return sig
}

// highS is the other signature, (r, n - s), of a low-s one: it verifies
// with crypto/ecdsa, and §5.6 refuses it.
func highS(t testing.TB, sig []byte) []byte {
	t.Helper()
	r, s, err := parseECDSASignature(sig)
	if err != nil || s.Cmp(p256HalfOrder) > 0 {
		t.Fatalf("not a low-s signature (%v)", err)
	}
	s.Sub(elliptic.P256().Params().N, s)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1BigInt(r); b.AddASN1BigInt(s) })
	twin := b.BytesOrPanic()
	return twin
}

// onlineHead is a head of "server", of size 7, dated at.
func onlineHead(t testing.TB, at time.Time) *TreeHead {
	h := &TreeHead{ServerID: "server", ServerPeer: entry(t, "server").PeerID, Size: 7, Time: at}
	copy(h.Root[:], fill(32, 0xcc))
	return h
}

// delegationRecord is a delegation with the given fields after the tag,
// as edit leaves them; it need not be valid.
func delegationRecord(t testing.TB, edit func(f [][]byte)) []byte {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(&onlinePriv("server").PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := [][]byte{[]byte("server"), []byte(entry(t, "server").PeerID.String()), []byte(OnlineKeyAlgorithm), spki,
		[]byte(FormatTime(onlineNB)), []byte(FormatTime(onlineNA))}
	if edit != nil {
		edit(f)
	}
	return EncodeRecord(OnlineKeyTag, f...)
}

// headSig is the head signature record of the delegation dele, signed by
// the test key signer, and of enc signed by priv.
func headSig(t testing.TB, dele []byte, signer identity.ID, priv *ecdsa.PrivateKey, enc []byte) []byte {
	t.Helper()
	return (&HeadSignature{Delegation: dele, DelegationSignature: signAs(t, signer, dele), Signature: onlineSign(t, priv, enc)}).Encode()
}

// checkBoth checks a head without a cache and twice through one, and
// returns the error, which must be the same each time.
func checkBoth(t *testing.T, trust *Trust, enc, sig []byte) error {
	t.Helper()
	_, err := trust.CheckTreeHead(enc, sig, nil)
	cache := NewHeadCache(4)
	for i := range 2 {
		if _, err2 := trust.CheckTreeHead(enc, sig, cache); !sameError(err, err2) {
			t.Fatalf("without a cache: %v; with one (%d): %v", err, i, err2)
		}
	}
	return err
}

func TestDelegatedHeadVerifies(t *testing.T) {
	trust := vectorTrust(t)
	k := delegateAs(t, onlinePriv("server"), entry(t, "server"), "server", onlineNB, onlineNA)
	for _, at := range []time.Time{sampleTime, onlineNB, onlineNA} {
		enc := onlineHead(t, at).Encode()
		sig, err := k.SignHead(enc, at)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkBoth(t, trust, enc, sig); err != nil {
			t.Fatalf("head dated %s in the window %s to %s: %v", FormatTime(at), FormatTime(onlineNB), FormatTime(onlineNA), err)
		}
	}
	// The window's length is bounded both ends included: 31 days is
	// accepted, and so is a window of one instant.
	for _, na := range []time.Time{onlineNB.Add(MaxDelegationWindow), onlineNB} {
		k := delegateAs(t, onlinePriv("server"), entry(t, "server"), "server", onlineNB, na)
		enc := onlineHead(t, onlineNB).Encode()
		sig, err := k.SignHead(enc, onlineNB)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkBoth(t, trust, enc, sig); err != nil {
			t.Fatalf("window of %s: %v", na.Sub(onlineNB), err)
		}
	}
}

// Every way a delegated head signature can be wrong is refused, with
// ErrBadSignature and a message naming what.
func TestDelegatedHeadRefused(t *testing.T) {
	trust := vectorTrust(t)
	srv, outsider, key := entry(t, "server"), entry(t, "outsider"), onlinePriv("server")
	at := sampleTime
	enc := onlineHead(t, at).Encode()
	good := delegationRecord(t, nil)
	set := func(i int, v string) []byte { return delegationRecord(t, func(f [][]byte) { f[i] = []byte(v) }) }
	spkiOf := func(pub any) []byte {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), nil)
	if err != nil {
		t.Fatal(err)
	}
	spki := spkiOf(&key.PublicKey)
	// The same point compressed (SEC 1 §2.3.3: 02 or 03 by Y's parity,
	// then X), in its SubjectPublicKeyInfo.
	point, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	compressed := append(mustHex(t, "3039301306072a8648ce3d020106082a8648ce3d030107032200"), append([]byte{2 + point[64]&1}, point[1:33]...)...)
	withSPKI := func(b []byte) []byte { return delegationRecord(t, func(f [][]byte) { f[3] = b }) }
	goodSig := headSig(t, good, "server", key, enc)
	hs, err := ParseHeadSignature(goodSig)
	if err != nil {
		t.Fatal(err)
	}
	record := func(d, dsig, sig []byte) []byte { return EncodeRecord(HeadSignatureTag, d, dsig, sig) }
	other := func(t testing.TB, id identity.ID) []byte {
		e := entry(t, id)
		h := onlineHead(t, at)
		h.ServerID, h.ServerPeer = e.ID, e.PeerID
		return h.Encode()
	}
	const bad = "bad server signature: online key: "
	for _, c := range []struct {
		name     string
		enc, sig []byte
		want     error
		msg      string
	}{
		{"delegation of another server id", enc, headSig(t, delegationRecord(t, func(f [][]byte) {
			f[0], f[1] = []byte("1000"), []byte(entry(t, "1000").PeerID.String())
		}), "server", key, enc), ErrBadSignature, bad + "the tree head of size 7 is of server (" + srv.PeerID.String() + "), its online key is delegated by 1000"},
		{"delegation of another peer ID", enc, headSig(t, set(1, outsider.PeerID.String()), "server", key, enc), ErrBadSignature,
			"its online key is delegated by server (" + outsider.PeerID.String() + ")"},
		{"delegation signed by another key", enc, headSig(t, good, "outsider", key, enc), ErrBadSignature,
			bad + "its delegation, for the tree head of size 7, does not verify with the key of server"},
		{"delegation signature of another delegation", enc, record(good, signAs(t, "server", set(5, FormatTime(onlineNB.Add(time.Second)))), hs.Signature), ErrBadSignature,
			"its delegation, for the tree head of size 7, does not verify"},
		{"head 1 ns before not_before", onlineHead(t, onlineNB.Add(-1)).Encode(), headSig(t, good, "server", key, onlineHead(t, onlineNB.Add(-1)).Encode()), ErrBadSignature,
			"is dated 2026-01-02T02:04:05.123456788Z, outside its window 2026-01-02T02:04:05.123456789Z to 2026-01-02T04:04:05.123456789Z"},
		{"head 1 ns after not_after", onlineHead(t, onlineNA.Add(1)).Encode(), headSig(t, good, "server", key, onlineHead(t, onlineNA.Add(1)).Encode()), ErrBadSignature,
			"is dated 2026-01-02T04:04:05.123456790Z, outside its window"},
		{"window of 31 days and 1 ns", enc, headSig(t, set(5, FormatTime(onlineNB.Add(MaxDelegationWindow+1))), "server", key, enc), ErrBadSignature,
			"online key window of 744h0m0.000000001s is longer than 744h0m0s"},
		{"window that ends before it starts", enc, headSig(t, set(5, FormatTime(onlineNB.Add(-1))), "server", key, enc), ErrBadSignature,
			"online key window ends (2026-01-02T02:04:05.123456788Z) before it starts (2026-01-02T02:04:05.123456789Z)"},
		{"not_before with an offset", enc, headSig(t, set(4, "2026-01-02T02:04:05.123456789+00:00"), "server", key, enc), ErrBadSignature,
			"online key not_before: malformed message"},
		{"P-384 key", enc, headSig(t, withSPKI(spkiOf(&p384.PublicKey)), "server", p384, enc), ErrBadSignature,
			"online public key is an ECDSA key on P-384, want P-256"},
		{"RSA key", enc, headSig(t, withSPKI(spkiOf(srv.PublicKey)), "server", key, enc), ErrBadSignature,
			"online public key is a *rsa.PublicKey, want ECDSA P-256"},
		{"compressed point", enc, headSig(t, withSPKI(compressed), "server", key, enc), ErrBadSignature, "online public key: "},
		{"key with a trailing byte", enc, headSig(t, withSPKI(append(bytes.Clone(spki), 0)), "server", key, enc), ErrBadSignature, "online public key: "},
		{"point off the curve", enc, headSig(t, withSPKI(flip(spki, 60)), "server", key, enc), ErrBadSignature, "online public key: "},
		{"algorithm ecdsa-p384-sha384", enc, headSig(t, set(2, "ecdsa-p384-sha384"), "server", key, enc), ErrBadSignature,
			`online key algorithm "ecdsa-p384-sha384", want "ecdsa-p256-sha256"`},
		{"delegation with a field too many", enc, headSig(t, append(bytes.Clone(good), 0, 0, 0, 0), "server", key, enc), ErrBadSignature,
			"tsnode-online-key-v1: 7 fields, want 6"},
		{"delegation truncated", enc, record(good[:len(good)-1], hs.DelegationSignature, hs.Signature), ErrBadSignature,
			"field 6 claims 30 bytes, 29 left"},
		{"delegation of another tag", enc, headSig(t, EncodeRecord(TreeHeadTag, bytes.Repeat([]byte("x"), 6)), "server", key, enc), ErrBadSignature,
			`record type "tsnode-tree-head-v1", want "tsnode-online-key-v1"`},
		{"record truncated", enc, goodSig[:len(goodSig)-1], ErrBadSignature,
			"head signature of " + strconv.Itoa(len(goodSig)-1) + " bytes is neither an RSA-4096 signature nor a delegated signature"},
		{"record of another tag", enc, EncodeRecord("tsnode-head-signature-v1", hs.Delegation, hs.DelegationSignature, hs.Signature), ErrBadSignature,
			"is neither an RSA-4096 signature nor a delegated signature"},
		{"record of two fields", enc, EncodeRecord(HeadSignatureTag, hs.Delegation, hs.Signature), ErrBadSignature, "2 fields, want 3"},
		{"empty online signature", enc, record(hs.Delegation, hs.DelegationSignature, nil), ErrBadSignature, "head signature: empty online signature"},
		{"empty delegation signature", enc, record(hs.Delegation, nil, hs.Signature), ErrBadSignature, "head signature: empty delegation signature"},
		{"the online signature alone", enc, hs.Signature, ErrBadSignature, "is neither an RSA-4096 signature"},
		{"empty signature", enc, nil, ErrBadSignature, "head signature of 0 bytes"},
		{"flipped byte in the online signature", enc, record(hs.Delegation, hs.DelegationSignature, flip(hs.Signature, 10)), ErrBadSignature,
			"the tree head of size 7 does not verify with the online key " + (&Delegation{Key: &key.PublicKey}).Fingerprint() + " delegated by server"},
		{"online signature of another head", onlineHead(t, at.Add(1)).Encode(), goodSig, ErrBadSignature, "does not verify with the online key"},
		{"the twin (r, n - s) of the online signature", enc, record(hs.Delegation, hs.DelegationSignature, highS(t, hs.Signature)), ErrBadSignature,
			"is not a DER ECDSA signature with s at most n/2"},
		{"head signed by another online key", enc, headSig(t, good, "server", onlinePriv("outsider"), enc), ErrBadSignature, "does not verify with the online key"},
		{"head of an untrusted server", other(t, "1000"), headSig(t, delegationRecord(t, func(f [][]byte) {
			f[0], f[1] = []byte("1000"), []byte(entry(t, "1000").PeerID.String())
		}), "1000", key, other(t, "1000")), ErrUntrustedSigner, "1000 is not a trusted authority"},
		{"head naming another key of server", func() []byte {
			h := onlineHead(t, at)
			h.ServerPeer = outsider.PeerID
			return h.Encode()
		}(), goodSig, ErrWrongServerKey, "signed as server by peer " + outsider.PeerID.String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkBoth(t, trust, c.enc, c.sig)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.msg)
			}
			if c.want == ErrBadSignature && VerdictFor(err) != VerdictBadSignature {
				t.Fatalf("verdict %q, want %q", VerdictFor(err), VerdictBadSignature)
			}
		})
	}
}
