package protocol

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ReceiptFormatV3 is a witnessed receipt (PROTOCOL.md §13.4): a v2
// receipt, plus a head at or after its tree head that witnesses cosigned,
// the consistency proof from the tree head to it, and the cosignatures.
const ReceiptFormatV3 = "tsnode-receipt-v3"

// ReceiptCosignature is one witness's cosignature in a v3 receipt.
type ReceiptCosignature struct {
	WitnessID   string `json:"witness_id"`
	WitnessPeer string `json:"witness_peer_id"`
	Time        string `json:"time"`
	SignedData  string `json:"signed_data"` // base64 of Cosignature.Encode()
	Signature   string `json:"signature"`   // base64, RSASSA-PKCS1-v1_5 SHA-256
}

// Witnessed is the decoded witness part of a v3 receipt.
type Witnessed struct {
	Head   *SignedTreeHead
	Proof  tlog.TreeProof // from the receipt's tree head to Head
	Cosigs []*SignedCosignature
}

// NewWitnessedReceipt returns the v3 receipt of the v2 receipt r: head,
// at or after r's tree head, tied to it by proof and cosigned by cosigs.
// r is not changed.
func NewWitnessedReceipt(r *Receipt, head *SignedTreeHead, proof tlog.TreeProof, cosigs []*SignedCosignature) *Receipt {
	w := *r
	w.Format = ReceiptFormatV3
	w.CosignedHead = newReceiptTreeHead(head)
	w.ConsistencyProof = nil
	for _, h := range proof {
		w.ConsistencyProof = append(w.ConsistencyProof, hex.EncodeToString(h[:]))
	}
	w.Cosignatures = nil
	for _, c := range cosigs {
		w.Cosignatures = append(w.Cosignatures, &ReceiptCosignature{
			WitnessID:   string(c.Cosig.WitnessID),
			WitnessPeer: c.Cosig.WitnessPeer.String(),
			Time:        FormatTime(c.Cosig.Time),
			SignedData:  base64.StdEncoding.EncodeToString(c.Encoded),
			Signature:   base64.StdEncoding.EncodeToString(c.Signature),
		})
	}
	return &w
}

// WitnessedOf decodes a v3 receipt's witness part and checks that its
// readable fields agree with the signed bytes. No signature is checked.
func (r *Receipt) WitnessedOf() (*Witnessed, error) {
	if r.Format != ReceiptFormatV3 {
		return nil, fmt.Errorf("%w: a %s receipt carries no cosignatures", ErrNotWitnessed, r.Format)
	}
	head, err := r.CosignedHead.decode("cosigned_head")
	if err != nil {
		return nil, err
	}
	proof, err := decodeHashList("consistency_proof", r.ConsistencyProof)
	if err != nil {
		return nil, err
	}
	w := &Witnessed{Head: head, Proof: proof}
	for i, rc := range r.Cosignatures {
		name := fmt.Sprintf("cosignatures[%d]", i)
		enc, err := decodeB64(name+".signed_data", rc.SignedData)
		if err != nil {
			return nil, err
		}
		sig, err := decodeB64(name+".signature", rc.Signature)
		if err != nil {
			return nil, err
		}
		c, err := ParseCosignature(enc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s.signed_data: %v", ErrMalformedReceipt, name, err)
		}
		for _, f := range []struct{ name, got, want string }{
			{"witness_id", rc.WitnessID, string(c.WitnessID)},
			{"witness_peer_id", rc.WitnessPeer, c.WitnessPeer.String()},
			{"time", rc.Time, FormatTime(c.Time)},
		} {
			if f.got != f.want {
				return nil, fmt.Errorf("%w: field %s.%s (%q) does not match the signed cosignature (%q)", ErrMalformedReceipt, name, f.name, f.got, f.want)
			}
		}
		w.Cosigs = append(w.Cosigs, &SignedCosignature{Cosig: c, Encoded: enc, Signature: sig})
	}
	return w, nil
}

// VerifyWitnessed is VerifyCached, and then, when witnesses is not nil,
// the witness checks of §13.4: the receipt is v3; its cosigned head
// passes the trust rule, is of the receipt's server and extends the
// receipt's tree head (the consistency proof holds); and at least K of the
// cosignatures are valid under witnesses.
func (r *Receipt) VerifyWitnessed(trust *Trust, witnesses *WitnessPolicy, documentHash []byte, cache *HeadCache) (*Statement, []*SignedCosignature, error) {
	s, err := r.VerifyCached(trust, documentHash, cache)
	if err != nil || witnesses == nil {
		return s, nil, err
	}
	w, err := r.WitnessedOf()
	if err != nil {
		return nil, nil, err
	}
	if err := trust.checkHeadSignature(w.Head, cache); err != nil {
		return nil, nil, fmt.Errorf("cosigned_head: %w", err)
	}
	sth, _ := r.TreeHeadOf() // checked by VerifyCached
	if err := CheckConsistency(sth.Head, w.Head.Head, w.Proof); err != nil {
		return nil, nil, fmt.Errorf("%w: the cosigned head does not extend the receipt's tree head: %w", ErrNotWitnessed, err)
	}
	good, err := witnesses.CheckCosignatures(w.Head.Head, w.Cosigs)
	if err != nil {
		return nil, nil, err
	}
	return s, good, nil
}
