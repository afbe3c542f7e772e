package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
)

// Fuzz targets of online keys (PROTOCOL.md §5.6), seeded from
// testdata/vectors/online_keys.json.

// FuzzParseDelegation: errors are ErrMalformed; what parses re-encodes
// to the input, holds a P-256 key, and covers a window, both ends
// included, of at most MaxDelegationWindow.
func FuzzParseDelegation(f *testing.F) {
	addVectorSeeds(f, "ParseDelegation")
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDelegation(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re, err := d.Encode(); err != nil || !bytes.Equal(re, b) {
			t.Fatalf("delegation %x re-encodes to %x (%v)", b, re, err)
		}
		if d.Key.Curve != elliptic.P256() {
			t.Fatalf("accepted a key on %s", d.Key.Curve.Params().Name)
		}
		if w := d.NotAfter.Sub(d.NotBefore); w < 0 || w > MaxDelegationWindow {
			t.Fatalf("accepted a window of %s", w)
		}
		if !d.Covers(d.NotBefore) || !d.Covers(d.NotAfter) || d.Covers(d.NotBefore.Add(-1)) || d.Covers(d.NotAfter.Add(1)) {
			t.Fatalf("the window %s to %s does not cover exactly its ends", FormatTime(d.NotBefore), FormatTime(d.NotAfter))
		}
	})
}

// FuzzParseHeadSignature: errors are ErrBadSignature; exactly 512 bytes
// are the identity key's signature, anything else a record of three
// non-empty fields that re-encodes to the input.
func FuzzParseHeadSignature(f *testing.F) {
	addVectorSeeds(f, "ParseHeadSignature")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseHeadSignature(b)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v is not ErrBadSignature", err)
			}
			if len(b) == identitySignatureSize {
				t.Fatalf("refused 512 bytes: %v", err)
			}
			return
		}
		if (s.Delegation == nil) != (len(b) == identitySignatureSize) {
			t.Fatalf("%d bytes split as %+v", len(b), s)
		}
		if s.Delegation != nil && (len(s.Delegation) == 0 || len(s.DelegationSignature) == 0 || len(s.Signature) == 0) {
			t.Fatalf("accepted a record with an empty field: %+v", s)
		}
		if re := s.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("head signature %x re-encodes to %x", b, re)
		}
		back, err := ParseHeadSignature(s.Encode())
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("encoded and parsed, %+v became %+v (%v)", s, back, err)
		}
	})
}

// FuzzDelegatedHead checks heads with their signatures, seeded from the
// CheckTreeHead vectors, through a cache that lives across inputs: it
// agrees with a check without one, never accepts a head or a delegation
// no vector has signed (only the online signature may differ, as ECDSA
// allows), and refuses a byte changed in what it accepted, cached or
// not.
func FuzzDelegatedHead(f *testing.F) {
	signed := map[string]bool{}
	for _, v := range vectorsOf(f, "CheckTreeHead") {
		head := mustHex(f, v.Head)
		f.Add(head, v.input(f))
		if v.Fields != nil {
			signed[signedPart(head, v.input(f))] = true
		}
	}
	trust := vectorTrust(f)
	server := entry(f, "server")
	cache := NewHeadCache(8)
	f.Fuzz(func(t *testing.T, encoded, sig []byte) {
		sth := checkHeadCached(t, trust, cache, encoded, sig)
		if sth == nil {
			return
		}
		if !signed[signedPart(encoded, sig)] {
			t.Fatalf("accepted a head or a delegation no vector signs: head %x, signature %x", encoded, sig)
		}
		if !signedByKey(server.PublicKey, encoded, sig) {
			t.Fatalf("accepted a head the key of server did not sign")
		}
		for _, m := range [][2][]byte{{flip(encoded, len(encoded)/2), sig}, {encoded, flip(sig, len(sig)/2)}, {encoded, flip(sig, len(sig)-1)}, {encoded, flip(sig, 100)}} {
			if _, err := trust.CheckTreeHead(m[0], m[1], cache); !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("a byte changed in an accepted head or signature, with the head cached: %v", err)
			}
		}
	})
}

// signedPart is what a signature vouches for: the head and the identity
// key's signature, or the head and the delegation with its signature
// (ECDSA signatures are not unique: from (r, s), (r, n−s) is another).
func signedPart(encoded, sig []byte) string {
	hs, err := ParseHeadSignature(sig)
	switch {
	case err != nil:
		return ""
	case hs.Delegation == nil:
		return string(EncodeRecord("identity", encoded, sig))
	}
	return string(EncodeRecord("delegated", encoded, hs.Delegation, hs.DelegationSignature))
}

// signedByKey is §5.6 written again, without the cache, the trust rule or
// the head's server: pub signed the head, or a delegation whose online
// key, for a window that covers the head's time, signed it.
func signedByKey(pub *rsa.PublicKey, encoded, sig []byte) bool {
	if len(sig) == identitySignatureSize {
		return VerifySignature(pub, encoded, sig) == nil
	}
	hs, err1 := ParseHeadSignature(sig)
	h, err2 := ParseTreeHead(encoded)
	if err1 != nil || err2 != nil || VerifySignature(pub, hs.Delegation, hs.DelegationSignature) != nil {
		return false
	}
	d, err := ParseDelegation(hs.Delegation)
	digest := sha256.Sum256(encoded)
	return err == nil && d.Covers(h.Time) && ecdsa.VerifyASN1(d.Key, digest[:], hs.Signature)
}
