package protocol

import (
	"fmt"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// The Merkle proofs of RFC 6962 / RFC 9162 (PROTOCOL.md §5.3, §5.4), on
// bytes alone: a verifier holds a leaf, a proof and signed roots, no log.

// VerifyInclusion checks that leaf is the leaf at index in the tree of the
// given size whose hash is root. Any failure, including impossible
// index/size combinations, wraps ErrBadProof.
func VerifyInclusion(leaf []byte, index, size uint64, root tlog.Hash, proof tlog.RecordProof) error {
	if size > math.MaxInt64 || index >= size {
		return fmt.Errorf("%w: leaf index %d not in tree of size %d", ErrBadProof, index, size)
	}
	if err := tlog.CheckRecord(proof, int64(size), root, int64(index), tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("%w: leaf %d, tree size %d: %v", ErrBadProof, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size newSize with hash newRoot
// contains the tree of size oldSize with hash oldRoot as a prefix. It
// requires 1 <= oldSize <= newSize; any failure wraps ErrInconsistent.
func VerifyConsistency(oldSize uint64, oldRoot tlog.Hash, newSize uint64, newRoot tlog.Hash, proof tlog.TreeProof) error {
	if oldSize == 0 || oldSize > newSize || newSize > math.MaxInt64 {
		return fmt.Errorf("%w: invalid sizes %d -> %d", ErrInconsistent, oldSize, newSize)
	}
	if err := tlog.CheckTree(proof, int64(newSize), newRoot, int64(oldSize), oldRoot); err != nil {
		return fmt.Errorf("%w: size %d -> %d: %v", ErrInconsistent, oldSize, newSize, err)
	}
	return nil
}
