package protocol

import (
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// FuzzParseTSARequest: any bytes either parse into a request whose leaf
// round-trips, or are refused with a *TSAError whose TimeStampResp
// parses as a rejection; nothing panics.
func FuzzParseTSARequest(f *testing.F) {
	h := bytes.Repeat([]byte{3}, 32)
	for _, q := range []tsq{
		{version: 1, alg: oidSHA256, imprint: h},
		{version: 1, alg: oidSHA256, imprint: h, nonce: big.NewInt(-5), certReq: true},
		{version: 1, alg: oidSHA512, imprint: h, policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 3161, 1}},
		{version: 1, alg: oidMD5, imprint: h[:16], ext: true},
	} {
		f.Add(q.der(f))
	}
	f.Add([]byte{0x30, 0x00})
	policy := ourPolicy(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseTSARequest(b, policy)
		if err != nil {
			var te *TSAError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *TSAError", err)
			}
			if _, perr := timestamp.ParseResponse(EncodeTSARejection(te)); perr == nil || !bytes.Contains([]byte(perr.Error()), []byte(timestamp.FailureInfo(te.Failure).String())) {
				t.Fatalf("the rejection of %v does not parse as one: %v", te, perr)
			}
			return
		}
		if r.Hash.Size() != len(r.Imprint) || r.Nonce != nil && !minimalInteger(r.Nonce) {
			t.Fatalf("accepted %+v", r)
		}
		l := &TSALeaf{Hash: r.Hash, Imprint: r.Imprint, Time: time.Unix(1, 2).UTC(), Policy: DefaultTSAPolicy, Nonce: r.Nonce,
			Via: TSAViaHTTP, ServerID: "server", ServerPeer: entry(t, "server").PeerID}
		back, err := ParseTSALeaf(l.Encode())
		if err != nil || !bytes.Equal(back.Encode(), l.Encode()) || back.Hash != r.Hash && r.Hash != crypto.Hash(0) {
			t.Fatalf("the leaf of an accepted request does not round-trip: %v", err)
		}
	})
}

// FuzzParseTSALeaf: what parses re-encodes to the same bytes.
func FuzzParseTSALeaf(f *testing.F) {
	l := &TSALeaf{Hash: crypto.SHA256, Imprint: bytes.Repeat([]byte{1}, 32), Time: time.Unix(5, 6).UTC(), Serial: 9,
		Policy: DefaultTSAPolicy, Nonce: []byte{1, 2}, Via: TSAViaHTTP, ServerID: "server", ServerPeer: entry(f, "server").PeerID}
	f.Add(l.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseTSALeaf(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(l.Encode(), b) {
			t.Fatalf("%x parses, but encodes as %x", b, l.Encode())
		}
	})
}

// FuzzCheckTSAToken: any bytes as a TimeStampResp either give a token
// that CheckTSAToken accepts or refuses with a verification error, or are
// refused as malformed; nothing panics.
func FuzzCheckTSAToken(f *testing.F) {
	now := time.Now()
	s := signerAt(f, "server", now)
	doc := []byte("doc")
	f.Add(EncodeTSAGranted(tokenFor(f, s, doc, crypto.SHA256, now, true)))
	f.Add(EncodeTSAGranted(tokenFor(f, s, doc, crypto.SHA512, now, false)))
	f.Add(EncodeTSARejection(&TSAError{Failure: TSABadAlg, Reason: "no"}))
	trust := trustOf(f, testkeys.Directory(f, "server"))
	f.Fuzz(func(t *testing.T, b []byte) {
		der, err := ParseTSAResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRefused) {
				t.Fatalf("response error %v", err)
			}
			return
		}
		if _, err := trust.CheckTSAToken(der, nil, digestOf(doc)); err != nil && !IsVerificationError(err) {
			t.Fatalf("token error %v is not a verification error", err)
		}
	})
}
