package protocol

import (
	"math/big"

	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
)

// Online keys (§5.6): the authority's RSA-4096 identity key certifies a
// short-lived ECDSA P-256 key, and only that key signs tree heads in the
// hot path, as Roughtime delegates its online key. A head signature is
// then a record holding the delegation, the identity key's signature of
// it, and the online key's signature of the head.
const (
	// OnlineKeyTag is the delegation record's tag.
	OnlineKeyTag = "tsnode-online-key-v1"
	// HeadSignatureTag is the tag of a delegated head signature.
	HeadSignatureTag = "tsnode-head-signature-v2"
	// OnlineKeyAlgorithm is the one online-key algorithm: ECDSA over
	// P-256, signatures ASN.1 DER over SHA-256 of the signed bytes.
	OnlineKeyAlgorithm = "ecdsa-p256-sha256"
	// MaxDelegationWindow bounds the window a verifier accepts, so that
	// no online key can sign for longer than this however it was
	// delegated.
	MaxDelegationWindow = 31 * 24 * time.Hour
	// identitySignatureSize is the size of an RSA-4096 signature: a head
	// signature of exactly this size is the identity key's own (§5.2).
	identitySignatureSize = 512
)

// ErrBadDelegation wraps what is wrong with a head's online-key
// delegation; it is a bad server signature.
var ErrBadDelegation = fmt.Errorf("%w: online key", ErrBadSignature)

// Delegation is the identity key's statement that an online key may sign
// the server's tree heads dated within [NotBefore, NotAfter].
type Delegation struct {
	ServerID   identity.ID
	ServerPeer peer.ID
	Key        *ecdsa.PublicKey
	NotBefore  time.Time
	NotAfter   time.Time
}

// Encode returns the delegation's canonical bytes, which the identity key
// signs.
func (d *Delegation) Encode() ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(d.Key)
	if err != nil {
		return nil, fmt.Errorf("online key: %w", err)
	}
	return EncodeRecord(OnlineKeyTag, []byte(d.ServerID), []byte(d.ServerPeer.String()), []byte(OnlineKeyAlgorithm), spki,
		[]byte(FormatTime(d.NotBefore)), []byte(FormatTime(d.NotAfter))), nil
}

// ParseDelegation decodes delegation bytes, refusing any but the
// canonical encoding of a P-256 key and a window of at most
// MaxDelegationWindow.
func ParseDelegation(b []byte) (*Delegation, error) {
	f, err := DecodeRecord(b, OnlineKeyTag, 6)
	if err != nil {
		return nil, err
	}
	d := &Delegation{}
	if d.ServerID, err = identity.ParseID(string(f[0])); err != nil {
		return nil, fmt.Errorf("%w: online key server: %v", ErrMalformed, err)
	}
	if d.ServerPeer, err = identity.ParsePeerID(string(f[1])); err != nil {
		return nil, fmt.Errorf("%w: online key server peer ID: %v", ErrMalformed, err)
	}
	if string(f[2]) != OnlineKeyAlgorithm {
		return nil, fmt.Errorf("%w: online key algorithm %q, want %q", ErrMalformed, truncate(f[2]), OnlineKeyAlgorithm)
	}
	pub, err := x509.ParsePKIXPublicKey(f[3])
	if err != nil {
		return nil, fmt.Errorf("%w: online public key: %v", ErrMalformed, err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: online public key is a %T, want ECDSA P-256", ErrMalformed, pub)
	case ec.Curve != elliptic.P256():
		return nil, fmt.Errorf("%w: online public key is an ECDSA key on %s, want P-256", ErrMalformed, ec.Curve.Params().Name)
	}
	d.Key = ec
	if again, err := x509.MarshalPKIXPublicKey(ec); err != nil || string(again) != string(f[3]) {
		return nil, fmt.Errorf("%w: online public key is not in its canonical encoding", ErrMalformed)
	}
	if d.NotBefore, err = ParseTime(string(f[4])); err != nil {
		return nil, fmt.Errorf("online key not_before: %w", err)
	}
	if d.NotAfter, err = ParseTime(string(f[5])); err != nil {
		return nil, fmt.Errorf("online key not_after: %w", err)
	}
	if d.NotAfter.Before(d.NotBefore) {
		return nil, fmt.Errorf("%w: online key window ends (%s) before it starts (%s)", ErrMalformed, FormatTime(d.NotAfter), FormatTime(d.NotBefore))
	}
	if d.NotAfter.Sub(d.NotBefore) > MaxDelegationWindow {
		return nil, fmt.Errorf("%w: online key window of %s is longer than %s", ErrMalformed, d.NotAfter.Sub(d.NotBefore), MaxDelegationWindow)
	}
	return d, nil
}

// Covers reports whether t is within the delegation's window, both ends
// included.
func (d *Delegation) Covers(t time.Time) bool {
	return !t.Before(d.NotBefore) && !t.After(d.NotAfter)
}

// HeadSignature is a tree head signature as carried on the wire and in
// SignedTreeHead.Signature: the identity key's own RSA signature
// (Delegation nil), or the online key's signature with its delegation.
type HeadSignature struct {
	Delegation          []byte // the delegation's bytes; nil: the identity key signed
	DelegationSignature []byte // the identity key's signature of Delegation
	Signature           []byte // RSA (identity) or ECDSA ASN.1 DER (online key)
}

// ParseHeadSignature splits a head signature: exactly 512 bytes is the
// identity key's signature; anything else must be a head-signature
// record (which is never 512 bytes: its delegation alone is longer than
// its online signature can make up for).
func ParseHeadSignature(sig []byte) (*HeadSignature, error) {
	if len(sig) == identitySignatureSize {
		return &HeadSignature{Signature: sig}, nil
	}
	f, err := DecodeRecord(sig, HeadSignatureTag, 3)
	if err != nil {
		return nil, fmt.Errorf("%w: head signature of %d bytes is neither an RSA-4096 signature nor a delegated signature: %v", ErrBadSignature, len(sig), err)
	}
	for i, name := range []string{"delegation", "delegation signature", "online signature"} {
		if len(f[i]) == 0 {
			return nil, fmt.Errorf("%w: head signature: empty %s", ErrBadSignature, name)
		}
	}
	return &HeadSignature{Delegation: f[0], DelegationSignature: f[1], Signature: f[2]}, nil
}

// Encode returns the bytes SignedTreeHead.Signature carries.
func (s *HeadSignature) Encode() []byte {
	if s.Delegation == nil {
		return s.Signature
	}
	return EncodeRecord(HeadSignatureTag, s.Delegation, s.DelegationSignature, s.Signature)
}

// OnlineKey is an online signing key with its signed delegation: what
// signs the server's tree heads. Pure: making and rotating one is the
// authority's business.
type OnlineKey struct {
	Delegation *Delegation
	encoded    []byte
	dsig       []byte
	priv       *ecdsa.PrivateKey
}

// NewOnlineKey makes a fresh P-256 key delegated by the identity key for
// server over [notBefore, notAfter]. signIdentity signs with the identity
// key (§4.2: RSASSA-PKCS1-v1_5 over SHA-256).
func NewOnlineKey(server identity.Entry, notBefore, notAfter time.Time, signIdentity func([]byte) ([]byte, error)) (*OnlineKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("online key: %w", err)
	}
	return DelegateOnlineKey(priv, server, notBefore, notAfter, signIdentity)
}

// DelegateOnlineKey delegates priv (for the worked example and vectors,
// which need a fixed key; the authority uses NewOnlineKey).
func DelegateOnlineKey(priv *ecdsa.PrivateKey, server identity.Entry, notBefore, notAfter time.Time, signIdentity func([]byte) ([]byte, error)) (*OnlineKey, error) {
	if priv.Curve != elliptic.P256() {
		return nil, errors.New("online key: not a P-256 key")
	}
	d := &Delegation{ServerID: server.ID, ServerPeer: server.PeerID, Key: &priv.PublicKey,
		NotBefore: notBefore.UTC(), NotAfter: notAfter.UTC()}
	if d.NotAfter.Sub(d.NotBefore) > MaxDelegationWindow || d.NotAfter.Before(d.NotBefore) {
		return nil, fmt.Errorf("online key: window %s to %s is not within %s", FormatTime(d.NotBefore), FormatTime(d.NotAfter), MaxDelegationWindow)
	}
	enc, err := d.Encode()
	if err != nil {
		return nil, err
	}
	// Parse what was encoded, so that a time that does not survive the
	// encoding (§2.4) is caught here, not by every verifier.
	if d, err = ParseDelegation(enc); err != nil {
		return nil, fmt.Errorf("online key: %w", err)
	}
	d.Key = &priv.PublicKey
	dsig, err := signIdentity(enc)
	if err != nil {
		return nil, fmt.Errorf("online key: the identity key's signature of the delegation: %w", err)
	}
	if server.PublicKey != nil {
		if err := VerifySignature(server.PublicKey, enc, dsig); err != nil {
			return nil, fmt.Errorf("online key: the delegation's signature does not verify with the key of %s", server.ID)
		}
	}
	return &OnlineKey{Delegation: d, encoded: enc, dsig: dsig, priv: priv}, nil
}

// Encoded returns the delegation's bytes.
func (k *OnlineKey) Encoded() []byte { return k.encoded }

// SignHead signs a tree head's encoding, dated t, with the online key and
// returns the head signature (§5.6). A head dated outside the window is
// refused: the caller signs it with the identity key instead.
func (k *OnlineKey) SignHead(encoded []byte, t time.Time) ([]byte, error) {
	if !k.Delegation.Covers(t) {
		return nil, fmt.Errorf("online key: head time %s is outside its window %s to %s", FormatTime(t), FormatTime(k.Delegation.NotBefore), FormatTime(k.Delegation.NotAfter))
	}
	digest := sha256.Sum256(encoded)
	// Deterministic (RFC 6979: random nil): one head, one signature, and
	// reproducible examples.
	sig, err := k.priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("online key: %w", err)
	}
	if sig, err = lowS(sig); err != nil {
		return nil, fmt.Errorf("online key: %w", err)
	}
	return (&HeadSignature{Delegation: k.encoded, DelegationSignature: k.dsig, Signature: sig}).Encode(), nil
}

// Fingerprint names the online key in messages: the first 8 bytes of
// SHA-256 of its public key's encoding, hex.
func (d *Delegation) Fingerprint() string {
	spki, err := x509.MarshalPKIXPublicKey(d.Key)
	if err != nil {
		return "(unencodable key)"
	}
	sum := sha256.Sum256(spki)
	return fmt.Sprintf("%x", sum[:8])
}

// p256HalfOrder is n/2 for P-256: a canonical signature's s is at most
// this (§5.6), since (r, s) and (r, n − s) both verify.
var p256HalfOrder = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// lowS returns the DER signature sig with s replaced by n − s when s is
// above n/2, so that a head has one signature.
func lowS(sig []byte) ([]byte, error) {
	r, s, err := parseECDSASignature(sig)
	if err != nil {
		return nil, err
	}
	if s.Cmp(p256HalfOrder) <= 0 {
		return sig, nil
	}
	s.Sub(elliptic.P256().Params().N, s)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(r)
		b.AddASN1BigInt(s)
	})
	return b.Bytes()
}

// parseECDSASignature reads a DER Ecdsa-Sig-Value.
func parseECDSASignature(sig []byte) (r, s *big.Int, err error) {
	r, s = new(big.Int), new(big.Int)
	in := cryptobyte.String(sig)
	var inner cryptobyte.String
	if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(s) || !inner.Empty() {
		return nil, nil, errors.New("not a DER ECDSA signature")
	}
	return r, s, nil
}
