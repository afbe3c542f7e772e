package protocol

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Receipt formats. A v1 receipt carries the server's signature over its
// statement; a v2 receipt carries the statement as a Merkle log leaf, its
// inclusion proof and the signed tree head.
const (
	ReceiptFormatV1 = "tsnode-receipt-v1"
	ReceiptFormatV2 = "tsnode-receipt-v2"
)

// MaxReceiptSize bounds a receipt file or relayed receipt.
const MaxReceiptSize = 64 << 10

// Receipt is the self-contained proof a requester keeps. The readable
// fields repeat what SignedData encodes; verification requires that they
// agree, and the signature covers SignedData byte for byte.
type Receipt struct {
	Format        string `json:"format"`
	HashAlgorithm string `json:"hash_algorithm"`
	DocumentHash  string `json:"document_hash"` // lowercase hex
	Time          string `json:"time"`
	Serial        uint64 `json:"serial"`
	RequesterID   string `json:"requester_id"`
	RequesterPeer string `json:"requester_peer_id"`
	ServerID      string `json:"server_id"`
	ServerPeer    string `json:"server_peer_id"`
	Nonce         string `json:"nonce"` // lowercase hex
	// v1 only.
	SignedData string `json:"signed_data,omitempty"` // base64 of Statement.Encode()
	Signature  string `json:"signature,omitempty"`   // base64, RSASSA-PKCS1-v1_5 SHA-256
	// v2 only.
	Leaf           string           `json:"leaf,omitempty"`            // base64 of Statement.EncodeLeaf()
	InclusionProof []string         `json:"inclusion_proof,omitempty"` // lowercase hex hashes
	TreeHead       *ReceiptTreeHead `json:"tree_head,omitempty"`
	// v3 only (§13.4), after the v2 members.
	CosignedHead     *ReceiptTreeHead      `json:"cosigned_head,omitempty"`
	ConsistencyProof []string              `json:"consistency_proof,omitempty"` // lowercase hex hashes
	Cosignatures     []*ReceiptCosignature `json:"cosignatures,omitempty"`
}

// ReceiptTreeHead is the signed tree head a v2 receipt's proof leads to.
type ReceiptTreeHead struct {
	Size       uint64 `json:"size"`
	RootHash   string `json:"root_hash"` // lowercase hex
	Time       string `json:"time"`
	SignedData string `json:"signed_data"` // base64 of TreeHead.Encode()
	// Signature is base64 of the identity key's RSASSA-PKCS1-v1_5
	// SHA-256 signature, or, with Delegation, of the online key's ECDSA
	// signature (§5.6).
	Signature string `json:"signature"`
	// A head signed by an online key: base64 of the delegation's bytes
	// and of the identity key's signature of them. Both or neither.
	Delegation          string `json:"delegation,omitempty"`
	DelegationSignature string `json:"delegation_signature,omitempty"`
}

// NewReceipt builds the receipt for a signed statement.
func NewReceipt(s *Statement, sig []byte) *Receipt {
	r := readableFields(s)
	r.Format = ReceiptFormatV1
	r.SignedData = base64.StdEncoding.EncodeToString(s.Encode())
	r.Signature = base64.StdEncoding.EncodeToString(sig)
	return r
}

// NewLogReceipt builds the v2 receipt of a logged statement.
func NewLogReceipt(s *Statement, proof tlog.RecordProof, sth *SignedTreeHead) *Receipt {
	r := readableFields(s)
	r.Format = ReceiptFormatV2
	r.Leaf = base64.StdEncoding.EncodeToString(s.EncodeLeaf())
	for _, h := range proof {
		r.InclusionProof = append(r.InclusionProof, hex.EncodeToString(h[:]))
	}
	r.TreeHead = newReceiptTreeHead(sth)
	return r
}

func newReceiptTreeHead(sth *SignedTreeHead) *ReceiptTreeHead {
	th := &ReceiptTreeHead{
		Size:       sth.Head.Size,
		RootHash:   hex.EncodeToString(sth.Head.Root[:]),
		Time:       FormatTime(sth.Head.Time),
		SignedData: base64.StdEncoding.EncodeToString(sth.Encoded),
		Signature:  base64.StdEncoding.EncodeToString(sth.Signature),
	}
	// A delegated signature is written in its parts, so that each can be
	// checked by hand (§11.6); one that does not parse is written whole,
	// and refused when read.
	if hs, err := ParseHeadSignature(sth.Signature); err == nil && hs.Delegation != nil {
		th.Signature = base64.StdEncoding.EncodeToString(hs.Signature)
		th.Delegation = base64.StdEncoding.EncodeToString(hs.Delegation)
		th.DelegationSignature = base64.StdEncoding.EncodeToString(hs.DelegationSignature)
	}
	return th
}

func readableFields(s *Statement) *Receipt {
	return &Receipt{
		HashAlgorithm: s.HashAlgorithm,
		DocumentHash:  hex.EncodeToString(s.DocumentHash),
		Time:          FormatTime(s.Time),
		Serial:        s.Serial,
		RequesterID:   string(s.RequesterID),
		RequesterPeer: s.RequesterPeer.String(),
		ServerID:      string(s.ServerID),
		ServerPeer:    s.ServerPeer.String(),
		Nonce:         hex.EncodeToString(s.Nonce),
	}
}

// Marshal encodes the receipt as indented JSON.
func (r *Receipt) Marshal() []byte {
	b, _ := json.MarshalIndent(r, "", "  ") // cannot fail: strings and a number
	return append(b, '\n')
}

// ParseReceipt decodes receipt JSON, refusing unknown, repeated or
// miscased members and trailing data.
func ParseReceipt(b []byte) (*Receipt, error) {
	return parseStrict[Receipt](b, receiptShape)
}

// ReadReceiptFile reads and parses a receipt file.
func ReadReceiptFile(path string) (*Receipt, error) {
	return readStrictFile(path, "receipt", ParseReceipt)
}

// Statement decodes the statement a receipt is about (v1: the signed
// data; v2: the log leaf) and checks that every readable field agrees
// with it.
func (r *Receipt) Statement() (*Statement, error) {
	var s *Statement
	switch r.Format {
	case ReceiptFormatV1:
		signed, err := decodeB64("signed_data", r.SignedData)
		if err != nil {
			return nil, err
		}
		if s, err = ParseStatement(signed); err != nil {
			return nil, fmt.Errorf("%w: signed_data: %v", ErrMalformedReceipt, err)
		}
	case ReceiptFormatV2, ReceiptFormatV3:
		leaf, err := decodeB64("leaf", r.Leaf)
		if err != nil {
			return nil, err
		}
		if s, err = ParseLeaf(leaf); err != nil {
			return nil, fmt.Errorf("%w: leaf: %v", ErrMalformedReceipt, err)
		}
	default:
		return nil, fmt.Errorf("%w: format %q, want %q, %q or %q", ErrMalformedReceipt, r.Format, ReceiptFormatV1, ReceiptFormatV2, ReceiptFormatV3)
	}
	if err := r.checkFormatFields(); err != nil {
		return nil, err
	}
	want := readableFields(s)
	for _, c := range []struct{ name, got, want string }{
		{"hash_algorithm", r.HashAlgorithm, want.HashAlgorithm},
		{"document_hash", r.DocumentHash, want.DocumentHash},
		{"time", r.Time, want.Time},
		{"serial", fmt.Sprint(r.Serial), fmt.Sprint(want.Serial)},
		{"requester_id", r.RequesterID, want.RequesterID},
		{"requester_peer_id", r.RequesterPeer, want.RequesterPeer},
		{"server_id", r.ServerID, want.ServerID},
		{"server_peer_id", r.ServerPeer, want.ServerPeer},
		{"nonce", r.Nonce, want.Nonce},
	} {
		if c.got != c.want {
			return nil, fmt.Errorf("%w: field %s (%q) does not match the signed data (%q)", ErrMalformedReceipt, c.name, c.got, c.want)
		}
	}
	return s, nil
}

// checkFormatFields refuses the members of the other format: a reader
// must not be able to take a v1 receipt for a v2 one or the reverse.
func (r *Receipt) checkFormatFields() error {
	var other []string
	if r.Format == ReceiptFormatV1 {
		if r.Leaf != "" {
			other = append(other, "leaf")
		}
		if r.InclusionProof != nil {
			other = append(other, "inclusion_proof")
		}
		if r.TreeHead != nil {
			other = append(other, "tree_head")
		}
	} else {
		if r.SignedData != "" {
			other = append(other, "signed_data")
		}
		if r.Signature != "" {
			other = append(other, "signature")
		}
	}
	if r.Format != ReceiptFormatV3 {
		if r.CosignedHead != nil {
			other = append(other, "cosigned_head")
		}
		if r.ConsistencyProof != nil {
			other = append(other, "consistency_proof")
		}
		if r.Cosignatures != nil {
			other = append(other, "cosignatures")
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("%w: a %s receipt has no %s", ErrMalformedReceipt, r.Format, strings.Join(other, ", "))
	}
	return nil
}

func decodeB64(field, v string) ([]byte, error) {
	if len(v) == 0 {
		return nil, fmt.Errorf("%w: %s is missing or not base64", ErrMalformedReceipt, field)
	}
	b, err := decodeBase64Strict(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64: %v", ErrMalformedReceipt, field, err)
	}
	return b, nil
}

// Verify checks the receipt offline (PROTOCOL.md §10.2): well-formed,
// signed by an authority trust holds, and (if documentHash is not nil)
// about that document. The error names the first check that failed.
func (r *Receipt) Verify(trust *Trust, documentHash []byte) (*Statement, error) {
	return r.VerifyCached(trust, documentHash, nil)
}

// VerifyCached is Verify with a cache of tree heads already checked
// (may be nil): a v2 receipt then costs one signature check per tree head
// and a Merkle proof per receipt.
func (r *Receipt) VerifyCached(trust *Trust, documentHash []byte, cache *HeadCache) (*Statement, error) {
	s, err := r.Statement()
	if err != nil {
		return nil, err
	}
	if err := trust.CheckAuthority(s.ServerID); err != nil {
		return nil, err
	}
	switch r.Format {
	case ReceiptFormatV1:
		err = r.verifyV1(trust, s)
	case ReceiptFormatV3:
		// Without a witness policy a v3 receipt verifies as a v2 one,
		// but its witness part must still be well formed.
		if _, err = r.WitnessedOf(); err == nil {
			err = r.verifyV2(trust, s, cache)
		}
	default:
		err = r.verifyV2(trust, s, cache)
	}
	if err != nil {
		return nil, err
	}
	if documentHash != nil && subtle.ConstantTimeCompare(documentHash, s.DocumentHash) != 1 {
		return nil, fmt.Errorf("%w: the document hashes to %x, the receipt is for %x", ErrHashMismatch, documentHash, s.DocumentHash)
	}
	return s, nil
}

func (r *Receipt) verifyV1(trust *Trust, s *Statement) error {
	signed, _ := base64.StdEncoding.DecodeString(r.SignedData)
	sig, err := decodeB64("signature", r.Signature)
	if err != nil {
		return err
	}
	return trust.checkStatementSignature(s, signed, sig)
}

// TreeHeadOf decodes a v2 receipt's signed tree head and checks that its
// readable fields agree with the signed bytes. The signature is not
// checked here.
func (r *Receipt) TreeHeadOf() (*SignedTreeHead, error) {
	return r.TreeHead.decode("tree_head")
}

// decode decodes a signed tree head written as JSON (a receipt's
// tree_head, a consistency file's old and new) and checks that its
// readable fields agree with the signed bytes; name is the member's name
// in errors. The signature is not checked here.
func (th *ReceiptTreeHead) decode(name string) (*SignedTreeHead, error) {
	if th == nil {
		return nil, fmt.Errorf("%w: %s is missing", ErrMalformedReceipt, name)
	}
	enc, err := decodeB64(name+".signed_data", th.SignedData)
	if err != nil {
		return nil, err
	}
	sig, err := decodeB64(name+".signature", th.Signature)
	if err != nil {
		return nil, err
	}
	if sig, err = th.headSignature(name, sig); err != nil {
		return nil, err
	}
	h, err := ParseTreeHead(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s.signed_data: %v", ErrMalformedReceipt, name, err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"size", fmt.Sprint(th.Size), fmt.Sprint(h.Size)},
		{"root_hash", th.RootHash, hex.EncodeToString(h.Root[:])},
		{"time", th.Time, FormatTime(h.Time)},
	} {
		if c.got != c.want {
			return nil, fmt.Errorf("%w: field %s.%s (%q) does not match the signed tree head (%q)", ErrMalformedReceipt, name, c.name, c.got, c.want)
		}
	}
	return &SignedTreeHead{Head: h, Encoded: enc, Signature: sig}, nil
}

// headSignature joins sig and the delegation, if any, into the head
// signature SignedTreeHead carries.
func (th *ReceiptTreeHead) headSignature(name string, sig []byte) ([]byte, error) {
	switch {
	case th.Delegation == "" && th.DelegationSignature == "":
		// Anything but an RSA signature fails its check later, as a bad
		// signature; a delegated one written whole is refused here, so
		// that a head has one way to be written.
		if len(sig) != identitySignatureSize {
			if _, err := DecodeRecord(sig, HeadSignatureTag, 3); err == nil {
				return nil, fmt.Errorf("%w: %s.signature holds a delegation: write it in delegation and delegation_signature", ErrMalformedReceipt, name)
			}
		}
		return sig, nil
	case th.Delegation == "" || th.DelegationSignature == "":
		return nil, fmt.Errorf("%w: %s has one of delegation and delegation_signature without the other", ErrMalformedReceipt, name)
	}
	d, err := decodeB64(name+".delegation", th.Delegation)
	if err != nil {
		return nil, err
	}
	dsig, err := decodeB64(name+".delegation_signature", th.DelegationSignature)
	if err != nil {
		return nil, err
	}
	if len(sig) == identitySignatureSize {
		return nil, fmt.Errorf("%w: %s.signature is an RSA-4096 signature's size, but it has a delegation", ErrMalformedReceipt, name)
	}
	return (&HeadSignature{Delegation: d, DelegationSignature: dsig, Signature: sig}).Encode(), nil
}

// ProofOf decodes a v2 receipt's inclusion proof.
func (r *Receipt) ProofOf() (tlog.RecordProof, error) {
	return decodeHashList("inclusion_proof", r.InclusionProof)
}

func (r *Receipt) verifyV2(trust *Trust, s *Statement, cache *HeadCache) error {
	sth, err := r.TreeHeadOf()
	if err != nil {
		return err
	}
	proof, err := r.ProofOf()
	if err != nil {
		return err
	}
	if err := trust.checkHeadSignature(sth, cache); err != nil {
		return err
	}
	leaf, _ := base64.StdEncoding.DecodeString(r.Leaf)
	return CheckInclusion(leaf, s, sth.Head, proof)
}

// HashFile returns SHA-256 of a file's exact bytes, streamed.
func HashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to hash document: %w", err)
	}
	defer f.Close()
	return HashReader(f)
}
