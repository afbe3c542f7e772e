package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// The Merkle tree hashing and proof checks of PROTOCOL.md §5, written
// from the specification's text with nothing but crypto/sha256, so the
// generator (and its test) can check the specification against the code.

type hash = [32]byte

// leafHash is §5.1: SHA-256(0x00 || leaf).
func leafHash(leaf []byte) hash {
	return sha256.Sum256(append([]byte{0x00}, leaf...))
}

// nodeHash is §5.1: SHA-256(0x01 || left || right).
func nodeHash(left, right hash) hash {
	b := make([]byte, 0, 65)
	b = append(b, 0x01)
	b = append(b, left[:]...)
	b = append(b, right[:]...)
	return sha256.Sum256(b)
}

// treeHash is MTH of §5.1 over the leaf hashes of leaves [lo, hi).
func treeHash(leaves []hash, lo, hi int) hash {
	if hi-lo == 1 {
		return leaves[lo]
	}
	k := largestPow2Below(hi - lo)
	return nodeHash(treeHash(leaves, lo, lo+k), treeHash(leaves, lo+k, hi))
}

// largestPow2Below returns the largest power of two k < n, for n > 1.
func largestPow2Below(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// inclusionStep is one row of the hand check of an inclusion proof.
type inclusionStep struct {
	fn, sn     uint64 // before the step
	p          hash
	left       bool // p is the left input
	r          hash // after the step
	fnAfter    uint64
	snAfter    uint64
	shiftedPre int // extra right shifts of step 4.b.ii
}

var errHandProof = errors.New("proof does not verify")

// checkInclusion is the algorithm of §5.3, step by step.
func checkInclusion(leaf []byte, index, size uint64, root hash, proof []hash) ([]inclusionStep, hash, error) {
	if index >= size {
		return nil, hash{}, fmt.Errorf("%w: index %d not below size %d", errHandProof, index, size)
	}
	fn, sn := index, size-1
	r := leafHash(leaf)
	var steps []inclusionStep
	for _, p := range proof {
		if sn == 0 {
			return steps, r, fmt.Errorf("%w: proof too long", errHandProof)
		}
		st := inclusionStep{fn: fn, sn: sn, p: p}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			st.left = true
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
				st.shiftedPre++
			}
		} else {
			r = nodeHash(r, p)
		}
		fn, sn = fn>>1, sn>>1
		st.r, st.fnAfter, st.snAfter = r, fn, sn
		steps = append(steps, st)
	}
	if sn != 0 || r != root {
		return steps, r, errHandProof
	}
	return steps, r, nil
}

// consistencyStep is one row of the hand check of a consistency proof.
type consistencyStep struct {
	fn, sn      uint64 // before the step
	c           hash
	both        bool // c went left of both fr and sr; else right of sr only
	fr, sr      hash // after the step
	shiftedPre  int
	fnAfter     uint64
	snAfter     uint64
	prependedFH bool
}

// checkConsistency is the algorithm of §5.4, step by step. It returns the
// start values (fn, sn, fr = sr) and the steps.
func checkConsistency(oldSize, newSize uint64, oldRoot, newRoot hash, proof []hash) (start consistencyStep, steps []consistencyStep, err error) {
	if oldSize == 0 || oldSize > newSize {
		return start, nil, fmt.Errorf("%w: sizes %d -> %d", errHandProof, oldSize, newSize)
	}
	if oldSize == newSize {
		if len(proof) != 0 || oldRoot != newRoot {
			return start, nil, errHandProof
		}
		return start, nil, nil
	}
	if len(proof) == 0 {
		return start, nil, fmt.Errorf("%w: empty proof", errHandProof)
	}
	path := proof
	if oldSize&(oldSize-1) == 0 {
		path = append([]hash{oldRoot}, proof...)
		start.prependedFH = true
	}
	fn, sn := oldSize-1, newSize-1
	for fn&1 == 1 {
		fn, sn = fn>>1, sn>>1
		start.shiftedPre++
	}
	fr, sr := path[0], path[0]
	start.fn, start.sn, start.fr, start.sr = fn, sn, fr, sr
	for _, c := range path[1:] {
		if sn == 0 {
			return start, steps, fmt.Errorf("%w: proof too long", errHandProof)
		}
		st := consistencyStep{fn: fn, sn: sn, c: c}
		if fn&1 == 1 || fn == sn {
			fr, sr = nodeHash(c, fr), nodeHash(c, sr)
			st.both = true
			for fn&1 == 0 && fn != 0 {
				fn, sn = fn>>1, sn>>1
				st.shiftedPre++
			}
		} else {
			sr = nodeHash(sr, c)
		}
		fn, sn = fn>>1, sn>>1
		st.fr, st.sr, st.fnAfter, st.snAfter = fr, sr, fn, sn
		steps = append(steps, st)
	}
	if fr != oldRoot || sr != newRoot || sn != 0 {
		return start, steps, errHandProof
	}
	return start, steps, nil
}

// parseRecord splits a record (§2.2) into its fields, tag first, as a
// verifier written from the specification would.
func parseRecord(b []byte) ([][]byte, error) {
	var fields [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("truncated length")
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, errors.New("field longer than the record")
		}
		fields = append(fields, b[:n])
		b = b[n:]
	}
	return fields, nil
}
