package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"

	"golang.org/x/mod/sumdb/tlog"
)

// TSAInclusionFormat marks an RFC 3161 inclusion file (§14.6).
const TSAInclusionFormat = "tsnode-rfc3161-inclusion-v1"

// TSAInclusion proves that a token's serial is a leaf of the log under a
// signed head: the head, the leaf at the serial and its inclusion proof.
// It is the file tsnode verify --rfc3161 --server --out writes.
type TSAInclusion struct {
	Format   string           `json:"format"`
	Serial   uint64           `json:"serial"`
	Leaf     string           `json:"leaf"` // base64
	TreeHead *ReceiptTreeHead `json:"tree_head"`
	Proof    []string         `json:"inclusion_proof"` // lowercase hex hashes
}

var tsaInclusionShape = &jsonShape{kinds: jsonKinds(reflect.TypeFor[TSAInclusion]()), objects: map[string]*jsonShape{"tree_head": treeHeadShape},
	required: func(v any, present map[string]bool) error {
		if err := missingMember(present, "", []string{"format", "serial", "leaf", "tree_head", "inclusion_proof"}); err != nil {
			return err
		}
		return missingMember(present, "tree_head.", treeHeadMembers)
	}}

// NewTSAInclusion builds the file for the leaf at serial under head.
func NewTSAInclusion(head *SignedTreeHead, serial uint64, leaf []byte, proof tlog.RecordProof) *TSAInclusion {
	f := &TSAInclusion{Format: TSAInclusionFormat, Serial: serial, Leaf: base64.StdEncoding.EncodeToString(leaf), TreeHead: newReceiptTreeHead(head), Proof: []string{}}
	for _, h := range proof {
		f.Proof = append(f.Proof, fmt.Sprintf("%x", h[:]))
	}
	return f
}

// Marshal encodes the file as indented JSON.
func (f *TSAInclusion) Marshal() []byte {
	b, _ := json.MarshalIndent(f, "", "  ") // cannot fail: strings and a number
	return append(b, '\n')
}

// ParseTSAInclusion decodes an inclusion file, as strictly as ParseReceipt.
func ParseTSAInclusion(b []byte) (*TSAInclusion, error) {
	return parseStrict[TSAInclusion](b, tsaInclusionShape)
}

// ReadTSAInclusionFile reads and parses an inclusion file.
func ReadTSAInclusionFile(path string) (*TSAInclusion, error) {
	return readStrictFile(path, "RFC 3161 inclusion proof", ParseTSAInclusion)
}

// Decode returns the file's head (its signature not checked), leaf and
// proof.
func (f *TSAInclusion) Decode() (*SignedTreeHead, []byte, tlog.RecordProof, error) {
	if f.Format != TSAInclusionFormat {
		return nil, nil, nil, fmt.Errorf("%w: not a %s file", ErrMalformedReceipt, TSAInclusionFormat)
	}
	head, err := f.TreeHead.decode("tree_head")
	if err != nil {
		return nil, nil, nil, err
	}
	leaf, err := decodeB64("leaf", f.Leaf)
	if err != nil {
		return nil, nil, nil, err
	}
	proof, err := decodeHashList("inclusion_proof", f.Proof)
	if err != nil {
		return nil, nil, nil, err
	}
	return head, leaf, proof, nil
}

// CheckTSAInclusion checks that tok, already accepted by CheckTSAToken,
// is in the log (§14.6), in this order: the head passes the trust rule
// (§10.2 checks 7 and 8) and is of the token's authority; the serial is
// under it; the proof holds for leaf at the token's serial; the leaf is
// an RFC 3161 leaf (§14.2) saying what the token says (hash, imprint,
// time, serial, policy, nonce, server and its key), not dated after the
// head. It returns the leaf.
func (t *Trust) CheckTSAInclusion(tok *TSAToken, head *SignedTreeHead, leaf []byte, proof tlog.RecordProof) (*TSALeaf, error) {
	if err := t.checkHeadSignature(head, nil); err != nil {
		return nil, err
	}
	h := head.Head
	if h.ServerID != tok.ServerID {
		return nil, fmt.Errorf("%w: the tree head is of %s, the token of %s", ErrDifferentServers, h.ServerID, tok.ServerID)
	}
	if tok.Serial >= h.Size {
		return nil, fmt.Errorf("%w: serial %d is not under the tree head (size %d)", ErrTokenNotLogged, tok.Serial, h.Size)
	}
	if err := VerifyInclusion(leaf, tok.Serial, h.Size, h.Root, proof); err != nil {
		return nil, err
	}
	l, err := ParseTSALeaf(leaf)
	if err != nil {
		return nil, fmt.Errorf("%w: the leaf at serial %d is not an RFC 3161 leaf: %v", ErrTokenNotLogged, tok.Serial, err)
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"hash algorithm", l.Hash == tok.Hash},
		{"imprint", bytes.Equal(l.Imprint, tok.Imprint)},
		{"time", l.Time.Equal(tok.Time)},
		{"serial", l.Serial == tok.Serial},
		{"policy", l.Policy == tok.Policy},
		{"nonce", bytes.Equal(l.Nonce, tok.Nonce)},
		{"server", l.ServerID == tok.ServerID && l.ServerPeer == tok.ServerPeer},
	} {
		if !c.ok {
			return nil, fmt.Errorf("%w: the leaf at serial %d is another token's (its %s differs)", ErrTokenNotLogged, tok.Serial, c.name)
		}
	}
	if l.Time.After(h.Time) {
		return nil, fmt.Errorf("%w: the leaf is dated after the tree head", ErrBadProof)
	}
	return l, nil
}
