package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// Fuzz targets of the JSON files a verifier reads (receipts, consistency
// proofs, rotation statements), seeded from testdata/vectors: errors wrap
// the documented sentinels, what verifies verifies again, and what
// parses survives being written back out.

// verifyErrors are the sentinels a receipt or a consistency file may be
// refused with once parsed.
var verifyErrors = []error{ErrMalformedReceipt, ErrBadSignature, ErrUntrustedSigner, ErrWrongServerKey, ErrRetiredKey, ErrBadProof, ErrInconsistent, ErrDifferentServers}

func isVerifyError(err error) bool {
	for _, s := range verifyErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func sameError(a, b error) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error())
}

// FuzzReceiptVerify: a receipt that verifies verifies again, with and
// without a head cache, and so does its Marshal output, to the same
// statement.
func FuzzReceiptVerify(f *testing.F) {
	addVectorSeeds(f, "ParseReceipt")
	trust := vectorTrust(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedReceipt) {
				t.Fatalf("ParseReceipt error %v is not ErrMalformedReceipt", err)
			}
			return
		}
		st, err := r.Verify(trust, nil)
		cache := NewHeadCache(4)
		for i := range 2 {
			st2, err2 := r.VerifyCached(trust, nil, cache)
			if !sameError(err, err2) {
				t.Fatalf("Verify: %v; VerifyCached (%d): %v", err, i, err2)
			}
			if err == nil && !bytes.Equal(st.Encode(), st2.Encode()) {
				t.Fatal("VerifyCached returned another statement")
			}
		}
		if err != nil {
			if !isVerifyError(err) {
				t.Fatalf("Verify error %v is none of the documented ones", err)
			}
			return
		}
		if st.ServerID != "server" {
			t.Fatalf("verified a receipt of %q", st.ServerID)
		}
		if _, err := r.Verify(trust, st.DocumentHash); err != nil {
			t.Fatalf("verified, but not for its own document hash: %v", err)
		}
		other := bytes.Clone(st.DocumentHash)
		other[0] ^= 1
		if _, err := r.Verify(trust, other); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("Verify for another document: %v", err)
		}
		out := r.Marshal()
		back, err := ParseReceipt(out)
		if err != nil {
			t.Fatalf("a verified receipt, written out, does not parse: %v\n%s", err, out)
		}
		st3, err := back.Verify(trust, nil)
		if err != nil {
			t.Fatalf("a verified receipt, written out, does not verify: %v\n%s", err, out)
		}
		if !bytes.Equal(st3.Encode(), st.Encode()) {
			t.Fatal("written out, the receipt verifies to another statement")
		}
	})
}

func FuzzParseConsistency(f *testing.F) {
	addVectorSeeds(f, "ParseConsistency")
	trust := vectorTrust(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConsistency(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedReceipt) {
				t.Fatalf("ParseConsistency error %v is not ErrMalformedReceipt", err)
			}
			return
		}
		err = c.Verify(trust)
		if err2 := c.Verify(trust); !sameError(err, err2) {
			t.Fatalf("Verify: %v, then %v", err, err2)
		}
		if err != nil {
			if !isVerifyError(err) {
				t.Fatalf("Verify error %v is none of the documented ones", err)
			}
			return
		}
		old, err1 := c.Old.decode("old")
		nw, err2 := c.New.decode("new")
		if err1 != nil || err2 != nil {
			t.Fatalf("verified, but the heads do not decode: %v, %v", err1, err2)
		}
		if old.Head.ServerID != "server" || nw.Head.ServerID != "server" {
			t.Fatalf("verified heads of %s and %s", old.Head.ServerID, nw.Head.ServerID)
		}
		if old.Head.Size == 0 || old.Head.Size > nw.Head.Size || old.Head.Time.After(nw.Head.Time) {
			t.Fatalf("verified old head %+v before new head %+v", old.Head, nw.Head)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConsistency(out)
		if err != nil {
			t.Fatalf("a verified file, written out, does not parse: %v\n%s", err, out)
		}
		if err := back.Verify(trust); err != nil {
			t.Fatalf("a verified file, written out, does not verify: %v\n%s", err, out)
		}
	})
}

func FuzzParseRotationFile(f *testing.F) {
	addVectorSeeds(f, "ParseRotationFile")
	pub := testkeys.Public(f, "server")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseRotationFile(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedRotation) {
				t.Fatalf("ParseRotationFile error %v is not ErrMalformedRotation", err)
			}
			return
		}
		if re := s.Rotation.Encode(); !bytes.Equal(re, s.Encoded) {
			t.Fatalf("signed_data %x re-encodes to %x", s.Encoded, re)
		}
		back, err := ParseRotationFile(s.Marshal())
		if err != nil {
			t.Fatalf("a parsed rotation file, written out, does not parse: %v", err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("written out and parsed, %+v became %+v", s, back)
		}
		err = s.Verify(pub)
		if err2 := s.Verify(pub); !sameError(err, err2) {
			t.Fatalf("Verify: %v, then %v", err, err2)
		}
		if err != nil && !errors.Is(err, ErrBadRotation) {
			t.Fatalf("Verify error %v is not ErrBadRotation", err)
		}
		if err == nil && (s.Rotation.OldPeer != entry(t, "server").PeerID || s.Rotation.NewPeer == s.Rotation.OldPeer) {
			t.Fatalf("verified %+v", s.Rotation)
		}
	})
}
