package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// Fuzz targets of the witness decoders (PROTOCOL.md §13), seeded from
// testdata/vectors/witness.json: errors wrap the documented sentinels,
// what parses re-encodes to its input, what verifies verifies again and
// survives being written back out.

func FuzzParseCosignature(f *testing.F) {
	addVectorSeeds(f, "ParseCosignature")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCosignature(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || c != nil {
				t.Fatalf("ParseCosignature: %v, %v", c, err)
			}
			return
		}
		if re := c.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("%x re-encodes to %x", b, re)
		}
	})
}

func FuzzParseGossipMessage(f *testing.F) {
	addVectorSeeds(f, "ParseGossipMessage")
	trust := vectorTrust(f)
	policy := vectorWitnesses(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseGossipMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ParseGossipMessage error %v is neither ErrMalformed nor ErrTooLarge", err)
			}
			return
		}
		if len(b) > MaxGossipMessageSize {
			t.Fatalf("parsed a message of %d bytes", len(b))
		}
		var re []byte
		switch {
		case m.Evidence != nil:
			if m.Head != nil || m.Cosig != nil {
				t.Fatal("evidence with a head or a cosignature")
			}
			re = EncodeGossipEvidence(m.Evidence)
			kind, err := m.Evidence.Verify(trust)
			if err == nil && (kind == "" || kind != m.Evidence.Kind()) {
				t.Fatalf("verified as %q, Kind %q", kind, m.Evidence.Kind())
			}
		case m.Cosig != nil:
			if m.Head == nil || !m.Cosig.Cosig.Of(m.Head.Head) {
				t.Fatal("a cosignature without its head")
			}
			re = EncodeGossipCosigned(m.Head, m.Cosig)
			if _, err := policy.CheckCosignature(m.Head.Head, m.Cosig.Encoded, m.Cosig.Signature); err != nil && !errors.Is(err, ErrBadCosignature) {
				t.Fatalf("CheckCosignature error %v is not ErrBadCosignature", err)
			}
		default:
			if m.Head == nil || len(m.Head.Signature) == 0 {
				t.Fatal("a head message without a signed head")
			}
			re = EncodeGossipHead(m.Head)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("%x re-encodes to %x", b, re)
		}
	})
}

func FuzzParseEvidenceFile(f *testing.F) {
	addVectorSeeds(f, "ParseEvidenceFile")
	trust := vectorTrust(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ef, err := ParseEvidenceFile(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedEvidence) || errors.Is(err, ErrMalformedReceipt) {
				t.Fatalf("ParseEvidenceFile error %v is not ErrMalformedEvidence alone", err)
			}
			return
		}
		kind, err := ef.Verify(trust)
		if kind2, err2 := ef.Verify(trust); kind2 != kind || !sameError(err, err2) {
			t.Fatalf("Verify: %q, %v, then %q, %v", kind, err, kind2, err2)
		}
		if err != nil {
			for _, s := range []error{ErrMalformedEvidence, ErrNoEquivocation, ErrBadSignature, ErrUntrustedSigner, ErrWrongServerKey, ErrRetiredKey, ErrDifferentServers} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Verify error %v is none of the documented ones", err)
		}
		switch kind {
		case EquivocationFork, EquivocationInconsistent, EquivocationRollback:
		default:
			t.Fatalf("verified as %q", kind)
		}
		e, err := ef.Evidence()
		if err != nil {
			t.Fatal(err)
		}
		if e.First.Head.ServerID != "server" || e.First.Head.ServerID != e.Second.Head.ServerID {
			t.Fatalf("evidence of %s and %s", e.First.Head.ServerID, e.Second.Head.ServerID)
		}
		out, err := json.Marshal(e.File())
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseEvidenceFile(out)
		if err != nil {
			t.Fatalf("verified evidence, written out, does not parse: %v\n%s", err, out)
		}
		if k, err := back.Verify(trust); err != nil || k != kind {
			t.Fatalf("verified evidence, written out, verifies as %q, %v", k, err)
		}
		// And gossiped, it proves the same.
		if m, err := ParseGossipMessage(EncodeGossipEvidence(e)); err == nil {
			if k, err := m.Evidence.Verify(trust); err != nil || k != kind {
				t.Fatalf("gossiped, the evidence verifies as %q, %v", k, err)
			}
		} else if !errors.Is(err, ErrTooLarge) {
			t.Fatal(err)
		}
	})
}

// FuzzWitnessedReceipt: a receipt is witnessed only if it verifies
// without a policy; what is witnessed is witnessed again, written out.
func FuzzWitnessedReceipt(f *testing.F) {
	addVectorSeeds(f, "ParseWitnessedReceipt")
	trust := vectorTrust(f)
	policy := vectorWitnesses(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedReceipt) {
				t.Fatalf("ParseReceipt error %v is not ErrMalformedReceipt", err)
			}
			return
		}
		st, good, err := r.VerifyWitnessed(trust, policy, nil, nil)
		_, _, plainErr := r.VerifyWitnessed(trust, nil, nil, nil)
		if err != nil {
			if !isVerifyError(err) && !errors.Is(err, ErrNotWitnessed) {
				t.Fatalf("VerifyWitnessed error %v is none of the documented ones", err)
			}
			return
		}
		if plainErr != nil {
			t.Fatalf("witnessed, but does not verify without a policy: %v", plainErr)
		}
		if r.Format != ReceiptFormatV3 || len(good) < policy.K() {
			t.Fatalf("witnessed a %s receipt with %d cosignatures", r.Format, len(good))
		}
		seen := map[string]bool{}
		for _, c := range good {
			if seen[string(c.Cosig.WitnessID)] {
				t.Fatalf("%s counted twice", c.Cosig.WitnessID)
			}
			seen[string(c.Cosig.WitnessID)] = true
		}
		out := r.Marshal()
		back, err := ParseReceipt(out)
		if err != nil {
			t.Fatalf("a witnessed receipt, written out, does not parse: %v\n%s", err, out)
		}
		st2, good2, err := back.VerifyWitnessed(trust, policy, st.DocumentHash, NewHeadCache(4))
		if err != nil || len(good2) != len(good) || !bytes.Equal(st2.Encode(), st.Encode()) {
			t.Fatalf("a witnessed receipt, written out: %v", err)
		}
	})
}
