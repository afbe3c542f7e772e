package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// tsq builds a TimeStampReq; fields left zero are left out.
type tsq struct {
	version int64
	alg     asn1.ObjectIdentifier
	imprint []byte
	policy  asn1.ObjectIdentifier
	nonce   *big.Int
	certReq bool
	ext     bool
}

func (q tsq) der(t testing.TB) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(q.version)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(q.alg)
				b.AddASN1NULL()
			})
			b.AddASN1OctetString(q.imprint)
		})
		if q.policy != nil {
			b.AddASN1ObjectIdentifier(q.policy)
		}
		if q.nonce != nil {
			b.AddASN1BigInt(q.nonce)
		}
		if q.certReq {
			b.AddASN1Boolean(true)
		}
		if q.ext {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 3})
					b.AddASN1OctetString(nil)
				})
			})
		}
	})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidMD5    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
)

func ourPolicy(t testing.TB) []byte {
	p, err := TSAPolicyDER(DefaultTSAPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseTSARequest(t *testing.T) {
	h32, h64 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 64)
	var ours asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(append([]byte{6, byte(len(ourPolicy(t)))}, ourPolicy(t)...), &ours); err != nil {
		t.Fatal(err)
	}
	ok := []struct {
		name string
		q    tsq
		hash crypto.Hash
	}{
		{"sha256", tsq{version: 1, alg: oidSHA256, imprint: h32}, crypto.SHA256},
		{"sha512 with our policy, nonce and certReq", tsq{version: 1, alg: oidSHA512, imprint: h64, policy: ours, nonce: big.NewInt(0x1234), certReq: true}, crypto.SHA512},
	}
	for _, c := range ok {
		r, err := ParseTSARequest(c.q.der(t), ourPolicy(t))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r.Hash != c.hash || !bytes.Equal(r.Imprint, c.q.imprint) || r.CertReq != c.q.certReq {
			t.Fatalf("%s: parsed as %+v", c.name, r)
		}
		if c.q.nonce != nil && !bytes.Equal(r.Nonce, c.q.nonce.Bytes()) || c.q.nonce == nil && r.Nonce != nil {
			t.Fatalf("%s: nonce %x", c.name, r.Nonce)
		}
	}
	refused := []struct {
		name string
		der  []byte
		want TSAFailure
	}{
		{"garbage", []byte("not DER at all"), TSABadDataFormat},
		{"empty", nil, TSABadDataFormat},
		{"trailing bytes", append(tsq{version: 1, alg: oidSHA256, imprint: h32}.der(t), 0), TSABadDataFormat},
		{"version 2", tsq{version: 2, alg: oidSHA256, imprint: h32}.der(t), TSABadRequest},
		{"md5", tsq{version: 1, alg: oidMD5, imprint: h32[:16]}.der(t), TSABadAlg},
		{"sha1", tsq{version: 1, alg: oidSHA1, imprint: h32[:20]}.der(t), TSABadAlg},
		{"unknown hash", tsq{version: 1, alg: asn1.ObjectIdentifier{1, 2, 3, 4}, imprint: h32}.der(t), TSABadAlg},
		{"short imprint", tsq{version: 1, alg: oidSHA256, imprint: h32[:31]}.der(t), TSABadDataFormat},
		{"other policy", tsq{version: 1, alg: oidSHA256, imprint: h32, policy: asn1.ObjectIdentifier{1, 2, 3, 4, 5}}.der(t), TSAUnacceptedPolicy},
		{"extension", tsq{version: 1, alg: oidSHA256, imprint: h32, ext: true}.der(t), TSAUnacceptedExtension},
		{"long nonce", tsq{version: 1, alg: oidSHA256, imprint: h32, nonce: new(big.Int).Lsh(big.NewInt(1), 8*MaxTSANonceSize)}.der(t), TSABadRequest},
	}
	for _, c := range refused {
		_, err := ParseTSARequest(c.der, ourPolicy(t))
		var te *TSAError
		if !errors.As(err, &te) || te.Failure != c.want {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestTSALeafRoundTrip(t *testing.T) {
	l := &TSALeaf{Hash: crypto.SHA256, Imprint: bytes.Repeat([]byte{1}, 32), Time: time.Date(2026, 1, 2, 3, 4, 5, 600700800, time.UTC),
		Serial: 42, Policy: DefaultTSAPolicy, Via: TSAViaHTTP, ServerID: "server", ServerPeer: entry(t, "server").PeerID}
	back, err := ParseTSALeaf(l.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Encode(), l.Encode()) {
		t.Fatal("leaf does not round-trip")
	}
	l.Via = "carrier pigeon"
	if _, err := ParseTSALeaf(l.Encode()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("via pigeon: %v", err)
	}
	if _, err := ParseLeaf(back.Encode()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an RFC 3161 leaf parsed as a stamp leaf: %v", err)
	}
}

// testSigner is a TSASigner under the test key of "server".
func testSigner(t testing.TB) *TSASigner {
	t.Helper()
	key := testkeys.Private(t, "server")
	now := time.Now()
	root, err := NewTSARoot("server", key, now)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := NewTSALeafCert("server", root, key, &ec.PublicKey, now, TSALeafValidity)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTSAChain([]*x509.Certificate{leaf, root}, &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	return &TSASigner{Cert: leaf, Key: ec, Chain: []*x509.Certificate{root}, Policy: DefaultTSAPolicy, Accuracy: 2*time.Second + 3*time.Millisecond}
}

func TestTSAToken(t *testing.T) {
	s := testSigner(t)
	if err := CheckTSAChain([]*x509.Certificate{s.Cert, s.Cert}, &testkeys.Private(t, "server").PublicKey); err == nil {
		t.Fatal("a chain whose root is the signing certificate passed")
	}
	l := &TSALeaf{Hash: crypto.SHA512, Imprint: bytes.Repeat([]byte{5}, 64), Time: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC),
		Serial: 1 << 40, Policy: DefaultTSAPolicy, Nonce: []byte{0x00, 0xff, 0x01}, Via: TSAViaHTTP}
	for _, certReq := range []bool{false, true} {
		token, err := s.Token(l, certReq)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := timestamp.ParseResponse(EncodeTSAGranted(token))
		if err != nil {
			t.Fatalf("certReq %v: %v", certReq, err)
		}
		if ts.SerialNumber.Uint64() != l.Serial || !ts.Time.Equal(l.Time) || ts.HashAlgorithm != crypto.SHA512 ||
			!bytes.Equal(ts.HashedMessage, l.Imprint) || ts.Nonce.Cmp(new(big.Int).SetBytes(l.Nonce)) != 0 ||
			ts.Policy.String() != DefaultTSAPolicy || ts.Accuracy != 2*time.Second+3*time.Millisecond {
			t.Fatalf("token says %+v", ts)
		}
		if got := len(ts.Certificates); certReq && got != 2 || !certReq && got != 0 {
			t.Fatalf("certReq %v: %d certificates in the token", certReq, got)
		}
	}
}

// A signer whose chain does not start with its certificate's issuer
// makes no token (the check runs once per pair, not per token).
func TestTSATokenWrongIssuer(t *testing.T) {
	s, other := testSigner(t), testSigner(t)
	l := &TSALeaf{Hash: crypto.SHA256, Imprint: bytes.Repeat([]byte{5}, 32), Time: time.Now(), Policy: DefaultTSAPolicy, Via: TSAViaHTTP}
	s.Chain = []*x509.Certificate{other.Cert}
	if _, err := s.Token(l, true); err == nil || !strings.Contains(err.Error(), "not issued by") {
		t.Fatalf("a token under a chain of another issuer: %v", err)
	}
	if _, err := other.Token(l, false); err != nil {
		t.Fatal(err)
	}
}

func TestTSARejection(t *testing.T) {
	for _, f := range []TSAFailure{TSABadAlg, TSABadDataFormat, TSAUnacceptedPolicy, TSAUnacceptedExtension, TSATimeNotAvailable, TSASystemFailure} {
		_, err := timestamp.ParseResponse(EncodeTSARejection(&TSAError{Failure: f, Reason: "because \xff"}))
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(timestamp.FailureInfo(f).String())) {
			t.Fatalf("%v: parsed as %v", f, err)
		}
	}
}
