package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// signerAt is a TSASigner for the identity key of id, its certificates
// made at made.
func signerAt(t testing.TB, id identity.ID, made time.Time) *TSASigner {
	t.Helper()
	key := testkeys.Private(t, id)
	root, err := NewTSARoot(id, key, made)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := NewTSALeafCert(id, root, key, &ec.PublicKey, made, TSALeafValidity)
	if err != nil {
		t.Fatal(err)
	}
	return &TSASigner{Cert: leaf, Key: ec, Chain: []*x509.Certificate{root}, Policy: DefaultTSAPolicy, Accuracy: time.Second}
}

func digestOf(data []byte) func(crypto.Hash) ([]byte, error) {
	return func(h crypto.Hash) ([]byte, error) {
		w := h.New()
		w.Write(data)
		return w.Sum(nil), nil
	}
}

// tokenFor signs a token for data, of hash h, dated at.
func tokenFor(t testing.TB, s *TSASigner, data []byte, h crypto.Hash, at time.Time, certReq bool) []byte {
	t.Helper()
	sum, _ := digestOf(data)(h)
	tok, err := s.Token(&TSALeaf{Hash: h, Imprint: sum, Time: at, Serial: 7, Policy: DefaultTSAPolicy, Nonce: []byte{0x01, 0x02}, Via: TSAViaHTTP}, certReq)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestCheckTSAToken(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	trust := trustOf(t, dir)
	now := time.Now().Truncate(time.Millisecond)
	doc := []byte("a document\n")
	s := signerAt(t, "server", now)
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		der, err := ParseTSAResponse(EncodeTSAGranted(tokenFor(t, s, doc, h, now, true)))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := trust.CheckTSAToken(der, nil, digestOf(doc))
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if tok.Serial != 7 || !tok.Time.Equal(now) || tok.Hash != h || tok.ServerID != "server" || tok.ServerPeer != entry(t, "server").PeerID ||
			!bytes.Equal(tok.Nonce, []byte{1, 2}) || tok.Accuracy != time.Second || !tok.Signer.Equal(s.Cert) {
			t.Fatalf("%v: %+v", h, tok)
		}
	}
	bare := tokenFor(t, s, doc, crypto.SHA256, now, false)
	if _, err := trust.CheckTSAToken(bare, nil, digestOf(doc)); !errors.Is(err, ErrBadTSAChain) {
		t.Fatalf("no certificates anywhere: %v", err)
	}
	if _, err := trust.CheckTSAToken(bare, []*x509.Certificate{s.Cert, s.Chain[0]}, digestOf(doc)); err != nil {
		t.Fatalf("certificates from the published chain: %v", err)
	}

	other := signerAt(t, "1000", now)
	foreign := tokenFor(t, other, doc, crypto.SHA256, now, true)
	if _, err := trust.CheckTSAToken(foreign, nil, digestOf(doc)); !errors.Is(err, ErrUntrustedSigner) {
		t.Fatalf("a root for another key: %v", err)
	}
	if tok, err := trustOf(t, dir, "server", "1000").CheckTSAToken(foreign, nil, digestOf(doc)); err != nil || tok.ServerID != "1000" {
		t.Fatalf("1000 trusted: %v", err)
	}

	good := tokenFor(t, s, doc, crypto.SHA256, now, true)
	sum, _ := digestOf(doc)(crypto.SHA256)
	i := bytes.Index(good, sum)
	tampered := flip(good, i+3)
	if _, err := trust.CheckTSAToken(tampered, nil, func(crypto.Hash) ([]byte, error) { return flip(sum, 3), nil }); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered imprint: %v", err)
	}
	if _, err := trust.CheckTSAToken(good, nil, digestOf([]byte("another document\n"))); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("another document: %v", err)
	}
	if _, err := trust.CheckTSAToken(good[:len(good)-1], nil, digestOf(doc)); !errors.Is(err, ErrMalformedToken) {
		t.Fatalf("truncated: %v", err)
	}
	old := signerAt(t, "server", now.Add(-2*TSALeafValidity))
	if _, err := trust.CheckTSAToken(tokenFor(t, old, doc, crypto.SHA256, now, true), nil, digestOf(doc)); !errors.Is(err, ErrCertValidity) {
		t.Fatalf("expired signing certificate at genTime: %v", err)
	}
}

// A token under a retired key's root is good for a genTime before the
// rotation, and refused after it.
func TestCheckTSATokenRetired(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	now := time.Now().Truncate(time.Millisecond)
	old := entry(t, "1000")
	trust, err := NewTrust(dir, []RetiredKey{{ID: "server", PublicKey: old.PublicKey, PeerID: old.PeerID, RetiredAt: now, Successor: entry(t, "server").PeerID}}, "server")
	if err != nil {
		t.Fatal(err)
	}
	s := signerAt(t, "1000", now.Add(-time.Hour))
	doc := []byte("doc")
	tok, err := trust.CheckTSAToken(tokenFor(t, s, doc, crypto.SHA256, now.Add(-time.Minute), true), nil, digestOf(doc))
	if err != nil || tok.ServerID != "server" || tok.ServerPeer != old.PeerID {
		t.Fatalf("before the rotation: %+v %v", tok, err)
	}
	if _, err := trust.CheckTSAToken(tokenFor(t, s, doc, crypto.SHA256, now.Add(time.Minute), true), nil, digestOf(doc)); !errors.Is(err, ErrRetiredKey) {
		t.Fatalf("after the rotation: %v", err)
	}
}

func TestParseTSAResponse(t *testing.T) {
	_, err := ParseTSAResponse(EncodeTSARejection(&TSAError{Failure: TSAUnacceptedPolicy, Reason: "not ours"}))
	var te *TSAError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &te) || te.Failure != TSAUnacceptedPolicy || te.Reason != "not ours" {
		t.Fatalf("rejection: %v", err)
	}
	for _, b := range [][]byte{nil, []byte("junk"), {0x30, 0x00}, append(EncodeTSAGranted([]byte{0x30, 0}), 0)} {
		if _, err := ParseTSAResponse(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x: %v", b, err)
		}
	}
}

// Tokens are checked concurrently (a verifier, the load generator):
// under -race this fails if the CMS parser's shared state is unguarded.
func TestCheckTSATokenConcurrently(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	trust := trustOf(t, dir)
	now := time.Now().Truncate(time.Millisecond)
	doc := []byte("a document\n")
	der := tokenFor(t, signerAt(t, "server", now), doc, crypto.SHA256, now, true)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := trust.CheckTSAToken(der, nil, digestOf(doc))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
