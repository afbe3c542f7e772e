package merklelog

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// StartCheckLeaves is how many of the newest leaves a server's start
// checks with VerifyFrom (about a second's work); the full check is
// tsnode log check.
const StartCheckLeaves = 1 << 18

// Verify recomputes, from the leaves, every hash the log stores and its
// root: the full check of `tsnode log check`.
func (l *Log) Verify() error { return l.VerifyFrom(0) }

// VerifyFrom is Verify for the leaves from index first on: their hashes
// and those of the subtrees they complete, and the root. The hashes of
// earlier subtrees it reads are those the root was computed from, so a
// change there still shows as a wrong root; a changed leaf before first
// does not. It costs about 3 µs a leaf.
func (l *Log) VerifyFrom(first uint64) error {
	err := l.view(func(size uint64, _ tlog.HashReader, tx *bolt.Tx) error { return verifyTree(tx, min(first, size), size) })
	if err != nil {
		return fmt.Errorf("merklelog: %s: %w", l.path, err)
	}
	return nil
}

// verifyTree recomputes, leaf after leaf, the hashes tlog stores for it
// (the leaf's hash and those of the subtrees it completes) from the
// leaf's bytes and the hashes already checked, and compares them with
// the stored ones; then the root. Reading the leaves and the hashes in
// key order also checks that both buckets hold exactly keys 0..n-1.
func verifyTree(tx *bolt.Tx, first, size uint64) error {
	hb, lb := tx.Bucket(bucketHashes), tx.Bucket(bucketLeaves)
	if hb == nil || lb == nil {
		return fmt.Errorf("%w: missing hashes or leaves bucket", ErrCorrupt)
	}
	hashIdx := uint64(tlog.StoredHashIndex(0, int64(first)))
	lc, hc := lb.Cursor(), hb.Cursor()
	lk, leaf := lc.Seek(u64(first))
	hk, hv := hc.Seek(u64(hashIdx))
	r := hashReader{hb}
	for n := first; n < size; n++ {
		if !bytes.Equal(lk, u64(n)) {
			return fmt.Errorf("%w: leaf %d is missing (found key %x)", ErrCorrupt, n, lk)
		}
		want, err := tlog.StoredHashes(int64(n), leaf, r)
		if err != nil {
			return fmt.Errorf("%w: leaf %d: %v", ErrCorrupt, n, err)
		}
		for _, w := range want {
			if !bytes.Equal(hk, u64(hashIdx)) || len(hv) != tlog.HashSize {
				return fmt.Errorf("%w: stored hash %d (of leaf %d) is missing or malformed", ErrCorrupt, hashIdx, n)
			}
			if !bytes.Equal(hv, w[:]) {
				return fmt.Errorf("%w: stored hash %d (of leaf %d) is %x, the leaves give %x", ErrCorrupt, hashIdx, n, hv, w[:])
			}
			hk, hv = hc.Next()
			hashIdx++
		}
		lk, leaf = lc.Next()
	}
	if lk != nil {
		return fmt.Errorf("%w: a leaf with key %x beyond the log's size %d", ErrCorrupt, lk, size)
	}
	if hk != nil {
		return fmt.Errorf("%w: a stored hash with key %x beyond the %d of size %d", ErrCorrupt, hk, hashIdx, size)
	}
	h, err := readHead(tx)
	if err != nil {
		return err
	}
	root, err := tlog.TreeHash(int64(size), r)
	if err != nil {
		return err
	}
	if h.size != size || root != h.root {
		return fmt.Errorf("%w: stored root %v (size %d) does not match root %v of the leaves at size %d", ErrCorrupt, h.root, h.size, root, size)
	}
	return nil
}
