package protocol

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ConsistencyFormat marks a consistency proof file.
const ConsistencyFormat = "tsnode-consistency-v1"

// Consistency is a self-contained proof that the log with the New head
// extends the log with the Old head: two signed heads and the RFC 6962
// consistency proof between them.
type Consistency struct {
	Format string           `json:"format"`
	Old    *ReceiptTreeHead `json:"old"`
	New    *ReceiptTreeHead `json:"new"`
	Proof  []string         `json:"proof"` // lowercase hex hashes
}

// NewConsistency builds a consistency proof file.
func NewConsistency(old, new *SignedTreeHead, proof tlog.TreeProof) *Consistency {
	c := &Consistency{Format: ConsistencyFormat, Old: newReceiptTreeHead(old), New: newReceiptTreeHead(new), Proof: []string{}}
	for _, h := range proof {
		c.Proof = append(c.Proof, fmt.Sprintf("%x", h[:]))
	}
	return c
}

// ParseConsistency decodes a consistency proof file, as strictly as
// ParseReceipt.
func ParseConsistency(b []byte) (*Consistency, error) {
	return parseStrict[Consistency](b, consistencyShape)
}

// ReadConsistencyFile reads and parses a consistency proof file.
func ReadConsistencyFile(path string) (*Consistency, error) {
	return readStrictFile(path, "consistency proof", ParseConsistency)
}

// Verify checks the file: both heads signed by one authority that trust
// holds, and the proof between them (PROTOCOL.md §8.4).
func (c *Consistency) Verify(trust *Trust) error {
	if c.Format != ConsistencyFormat || c.Old == nil || c.New == nil {
		return fmt.Errorf("%w: not a %s file", ErrMalformedReceipt, ConsistencyFormat)
	}
	old, err := c.Old.decode("old")
	if err != nil {
		return err
	}
	nw, err := c.New.decode("new")
	if err != nil {
		return err
	}
	proof, err := decodeHashList("proof", c.Proof)
	if err != nil {
		return err
	}
	return trust.CheckConsistency(old, nw, proof)
}
