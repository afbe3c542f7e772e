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

// ConsistencyPath is the consistency path of RFC 9162 §2.1.4.2 from a
// proof between sizes m and n: the proof, with prefixRoot (the root of
// the first m leaves of the larger tree) prepended when m is a power of
// two, where the proof leaves it out because the verifier is assumed to
// know it.
func ConsistencyPath(m uint64, proof tlog.TreeProof, prefixRoot tlog.Hash) []tlog.Hash {
	if m&(m-1) == 0 {
		return append([]tlog.Hash{prefixRoot}, proof...)
	}
	return append([]tlog.Hash(nil), proof...)
}

// PathRoots computes from a consistency path (ConsistencyPath) between
// sizes 1 <= m < n both roots it implies, as RFC 9162 §2.1.4.2 does: fr,
// the root of the first m leaves, and sr, the root of all n. ok is false
// when the path has the wrong length for m and n. A path whose sr is a
// signed root of size n fixes fr: a signed root of size m other than fr
// is of another log (under SHA-256's collision resistance).
func PathRoots(m, n uint64, path []tlog.Hash) (fr, sr tlog.Hash, ok bool) {
	if m == 0 || m >= n || len(path) == 0 {
		return fr, sr, false
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr = path[0], path[0]
	for _, c := range path[1:] {
		if sn == 0 {
			return fr, sr, false
		}
		if fn&1 == 1 || fn == sn {
			fr, sr = tlog.NodeHash(c, fr), tlog.NodeHash(c, sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = tlog.NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	return fr, sr, sn == 0
}
