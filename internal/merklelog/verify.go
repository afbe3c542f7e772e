package merklelog

import (
	"errors"
	"fmt"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// Verification helpers. They need no database, so verifiers that only hold
// a leaf, a proof and signed roots can use them.

var (
	// ErrInclusion reports an inclusion proof that does not verify.
	ErrInclusion = errors.New("merklelog: inclusion proof does not verify")
	// ErrConsistency reports a consistency proof that does not verify.
	ErrConsistency = errors.New("merklelog: consistency proof does not verify")
)

// VerifyInclusion checks that leaf is the leaf at index in the tree of the
// given size whose hash is root. Any failure, including impossible
// index/size combinations, wraps ErrInclusion.
func VerifyInclusion(leaf []byte, index, size uint64, root tlog.Hash, proof tlog.RecordProof) error {
	if size > math.MaxInt64 || index >= size {
		return fmt.Errorf("%w: leaf index %d not in tree of size %d", ErrInclusion, index, size)
	}
	if err := tlog.CheckRecord(proof, int64(size), root, int64(index), tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("%w: leaf %d, tree size %d: %v", ErrInclusion, index, size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size newSize with hash newRoot
// contains the tree of size oldSize with hash oldRoot as a prefix. It
// requires 1 <= oldSize <= newSize; any failure wraps ErrConsistency.
func VerifyConsistency(oldSize uint64, oldRoot tlog.Hash, newSize uint64, newRoot tlog.Hash, proof tlog.TreeProof) error {
	if oldSize == 0 || oldSize > newSize || newSize > math.MaxInt64 {
		return fmt.Errorf("%w: invalid sizes %d -> %d", ErrConsistency, oldSize, newSize)
	}
	if err := tlog.CheckTree(proof, int64(newSize), newRoot, int64(oldSize), oldRoot); err != nil {
		return fmt.Errorf("%w: size %d -> %d: %v", ErrConsistency, oldSize, newSize, err)
	}
	return nil
}
