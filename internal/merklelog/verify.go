package merklelog

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// Verify recomputes, from the leaves, every hash the log stores and its
// root: the full check of `tsnode log check`, and of a server's start.
func (l *Log) Verify() error {
	err := l.view(func(size uint64, _ tlog.HashReader, tx *bolt.Tx) error { return verifyTree(tx, size) })
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
func verifyTree(tx *bolt.Tx, size uint64) error {
	hb, lb := tx.Bucket(bucketHashes), tx.Bucket(bucketLeaves)
	if hb == nil || lb == nil {
		return fmt.Errorf("%w: missing hashes or leaves bucket", ErrCorrupt)
	}
	lc, hc := lb.Cursor(), hb.Cursor()
	lk, leaf := lc.First()
	hk, hv := hc.First()
	var hashIdx uint64
	r := hashReader{hb}
	for n := range size {
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
