package protocol

import "golang.org/x/mod/sumdb/tlog"

// LogStamp is one stamp of the log: its statement (a leaf), the proof
// that the leaf is in the tree, and the signed head of that tree.
type LogStamp struct {
	Statement *Statement
	Proof     tlog.RecordProof
	Head      *SignedTreeHead
	// RFC3161 is set instead of Statement for the leaf of an RFC 3161
	// token (§14.2).
	RFC3161 *TSALeaf

	// Leaf is Statement.EncodeLeaf(), as the authority made it for the
	// log: a session reply sends these exact bytes. May be nil (then it
	// is encoded again); Statement is not to be changed once it is set.
	Leaf []byte
}

// Receipt returns the v2 receipt of the stamp.
func (s *LogStamp) Receipt() *Receipt { return NewLogReceipt(s.Statement, s.Proof, s.Head) }

// EncodedLeaf returns the stamp's leaf bytes.
func (s *LogStamp) EncodedLeaf() []byte {
	if s.Leaf != nil {
		return s.Leaf
	}
	if s.RFC3161 != nil {
		return s.RFC3161.Encode()
	}
	return s.Statement.EncodeLeaf()
}
