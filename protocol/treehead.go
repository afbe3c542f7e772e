package protocol

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
)

// Batched signing: the server appends each stamp as a leaf of an
// append-only Merkle log (RFC 6962 hashing) and signs one tree head per
// batch instead of one statement per stamp.

// Tags of a log leaf and of a signed tree head.
const (
	LeafTag     = "tsnode-stamp-leaf-v1"
	TreeHeadTag = "tsnode-tree-head-v1"
)

// EncodeLeaf returns the statement as a log leaf: the same fields as the
// signed statement under the leaf tag.
func (s *Statement) EncodeLeaf() []byte { return s.encode(LeafTag) }

// ParseLeaf decodes a log leaf.
func ParseLeaf(b []byte) (*Statement, error) { return parseStatement(b, LeafTag, nil) }

// TreeHead is what the server signs once per batch.
type TreeHead struct {
	ServerID   identity.ID
	ServerPeer peer.ID
	Size       uint64
	Root       tlog.Hash
	Time       time.Time
}

// Encode returns the canonical bytes that are signed.
func (h *TreeHead) Encode() []byte {
	return EncodeRecord(TreeHeadTag, []byte(h.ServerID), []byte(h.ServerPeer.String()), u64(h.Size), h.Root[:], []byte(FormatTime(h.Time)))
}

// ParseTreeHead decodes canonical tree head bytes.
func ParseTreeHead(b []byte) (*TreeHead, error) {
	f, err := DecodeRecord(b, TreeHeadTag, 5)
	if err != nil {
		return nil, err
	}
	h := &TreeHead{}
	if h.ServerID, err = identity.ParseID(string(f[0])); err != nil {
		return nil, fmt.Errorf("%w: tree head server: %v", ErrMalformed, err)
	}
	if h.ServerPeer, err = identity.ParsePeerID(string(f[1])); err != nil {
		return nil, fmt.Errorf("%w: tree head server peer ID: %v", ErrMalformed, err)
	}
	if h.Size, err = parseU64("tree size", f[2]); err != nil {
		return nil, err
	}
	if len(f[3]) != tlog.HashSize {
		return nil, fmt.Errorf("%w: root hash is %d bytes, want %d", ErrMalformed, len(f[3]), tlog.HashSize)
	}
	copy(h.Root[:], f[3])
	if h.Time, err = ParseTime(string(f[4])); err != nil {
		return nil, err
	}
	return h, nil
}

// SignedTreeHead is a tree head with the server's signature over its
// encoding.
type SignedTreeHead struct {
	Head      *TreeHead
	Encoded   []byte
	Signature []byte
}

// SignTreeHead encodes and signs h.
func SignTreeHead(key *rsa.PrivateKey, h *TreeHead) (*SignedTreeHead, error) {
	enc := h.Encode()
	sig, err := Sign(key, enc)
	if err != nil {
		return nil, err
	}
	return &SignedTreeHead{Head: h, Encoded: enc, Signature: sig}, nil
}

// HeadCache remembers tree heads whose signature verified, so a verifier
// checks each head's signature once, then only the proof per receipt.
// It holds at most maxEntries heads; when full it starts over.
type HeadCache struct {
	mu      sync.Mutex
	checked map[[32]byte]struct{}
	max     int
	keys    map[*rsa.PublicKey]pubDigest // SHA-256 of each key's modulus and exponent
	// Verifications in progress: callers asking for the same head
	// meanwhile (the sessions that got replies of one batch) wait for
	// the one running instead of verifying it again.
	running  map[[32]byte]*headCheck
	verified atomic.Int64 // signature verifications done, for tests
}

type headCheck struct {
	done chan struct{}
	err  error
}

type pubDigest struct {
	n *big.Int // the modulus the digest is of, should the key be changed
	e int
	d [32]byte
}

// NewHeadCache makes a cache of at most maxEntries verified heads.
func NewHeadCache(maxEntries int) *HeadCache {
	return &HeadCache{checked: map[[32]byte]struct{}{}, max: maxEntries, keys: map[*rsa.PublicKey]pubDigest{}, running: map[[32]byte]*headCheck{}}
}

// keyDigest returns a digest of pub, computed once per key. Called with
// c.mu held.
func (c *HeadCache) keyDigest(pub *rsa.PublicKey) [32]byte {
	if d, ok := c.keys[pub]; ok && d.n == pub.N && d.e == pub.E {
		return d.d
	}
	if len(c.keys) >= 64 {
		clear(c.keys)
	}
	d := pubDigest{n: pub.N, e: pub.E, d: sha256.Sum256(EncodeRecord("tsnode/head-cache-key", pub.N.Bytes(), u64(uint64(pub.E))))}
	c.keys[pub] = d
	return d.d
}

// headCacheKey names a (key, head, signature) triple.
func headCacheKey(keyDigest [32]byte, encoded, sig []byte) [32]byte {
	h := sha256.New()
	h.Write(keyDigest[:])
	var l [8]byte
	binary.BigEndian.PutUint32(l[:4], uint32(len(encoded)))
	binary.BigEndian.PutUint32(l[4:], uint32(len(sig)))
	h.Write(l[:])
	h.Write(encoded)
	h.Write(sig)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// verify checks an RSA signature by pub over encoded, once per cache. A
// signature that fails is not remembered.
func (c *HeadCache) verify(pub *rsa.PublicKey, encoded, sig []byte) error {
	return c.check(pub, encoded, sig, func() error { return VerifySignature(pub, encoded, sig) })
}

// verifyDelegated checks a delegated head signature (§5.6) whose
// delegation the identity key pub must have signed, once per cache; the
// delegation's own signature is remembered too, so that each online key
// costs one RSA verification.
func (c *HeadCache) verifyDelegated(pub *rsa.PublicKey, sth *SignedTreeHead) error {
	return c.check(pub, sth.Encoded, sth.Signature, func() error { return checkDelegated(c, pub, sth) })
}

// check runs verify, unless the cache remembers (pub, encoded, sig) as
// verified or another caller is verifying it right now.
func (c *HeadCache) check(pub *rsa.PublicKey, encoded, sig []byte, verify func() error) error {
	if c == nil {
		return verify()
	}
	c.mu.Lock()
	kd := c.keyDigest(pub)
	k := headCacheKey(kd, encoded, sig)
	if _, ok := c.checked[k]; ok {
		c.mu.Unlock()
		return nil
	}
	if r, ok := c.running[k]; ok {
		c.mu.Unlock()
		<-r.done
		return r.err
	}
	r := &headCheck{done: make(chan struct{})}
	c.running[k] = r
	c.mu.Unlock()

	c.verified.Add(1)
	r.err = verify()
	c.mu.Lock()
	delete(c.running, k)
	if r.err == nil {
		if len(c.checked) >= c.max {
			c.checked = map[[32]byte]struct{}{}
		}
		c.checked[k] = struct{}{}
	}
	c.mu.Unlock()
	close(r.done)
	return r.err
}

// sameHead reports whether two signed heads are byte-identical.
func SameHead(a, b *SignedTreeHead) bool {
	return bytes.Equal(a.Encoded, b.Encoded) && bytes.Equal(a.Signature, b.Signature)
}
