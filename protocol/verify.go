package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
)

// The one verification path. Every check of a signed statement, a tree
// head, an inclusion proof, a consistency proof and a receipt, by the
// requester, the session client, the verifier role, tsnode verify and
// tsnode log, goes through these functions, so they all apply the same
// trust policy and fail with the same sentinel errors (errors.go), each
// of which maps to one relay verdict (verdictFor).

// CheckStatement parses a v1 signed statement and checks that a trusted
// authority signed it.
func (t *Trust) CheckStatement(encoded, sig []byte) (*Statement, error) {
	st, err := ParseStatement(encoded)
	if err != nil {
		return nil, err
	}
	return st, t.checkStatementSignature(st, encoded, sig)
}

// checkStatementSignature checks the signature of the statement st,
// parsed from encoded, with the trusted key for its server at its time.
func (t *Trust) checkStatementSignature(st *Statement, encoded, sig []byte) error {
	key, err := t.keyFor(st.ServerID, st.ServerPeer, st.Time)
	if err != nil {
		return err
	}
	if err := VerifySignature(key, encoded, sig); err != nil {
		return fmt.Errorf("%w: the statement does not verify with the key of %s (%s)", ErrBadSignature, st.ServerID, st.ServerPeer)
	}
	return nil
}

// CheckTreeHead parses a signed tree head and checks that a trusted
// authority signed it. cache (may be nil) remembers heads already
// checked.
func (t *Trust) CheckTreeHead(encoded, sig []byte, cache *HeadCache) (*SignedTreeHead, error) {
	h, err := ParseTreeHead(encoded)
	if err != nil {
		return nil, err
	}
	sth := &SignedTreeHead{Head: h, Encoded: encoded, Signature: sig}
	return sth, t.checkHeadSignature(sth, cache)
}

// checkHeadSignature checks sth's signature with the trusted key for its
// server at its time: the identity key's own signature, or a delegated
// one (§5.6): the identity key signed the delegation, the delegation
// names the head's server, the head's time is within its window, and
// the online key signed the head.
func (t *Trust) checkHeadSignature(sth *SignedTreeHead, cache *HeadCache) error {
	h := sth.Head
	key, err := t.keyFor(h.ServerID, h.ServerPeer, h.Time)
	if err != nil {
		return err
	}
	if len(sth.Signature) != identitySignatureSize {
		return cache.verifyDelegated(key, sth)
	}
	if err := cache.verify(key, sth.Encoded, sth.Signature); err != nil {
		return fmt.Errorf("%w: the tree head of size %d does not verify with the key of %s (%s)", ErrBadSignature, h.Size, h.ServerID, h.ServerPeer)
	}
	return nil
}

// checkDelegated checks a delegated head signature with the identity key
// key; the delegation's own signature goes through the cache.
func checkDelegated(c *HeadCache, key *rsa.PublicKey, sth *SignedTreeHead) error {
	h := sth.Head
	hs, err := ParseHeadSignature(sth.Signature)
	if err != nil {
		return fmt.Errorf("the tree head of size %d: %w", h.Size, err)
	}
	d, err := ParseDelegation(hs.Delegation)
	if err != nil {
		return fmt.Errorf("%w: the tree head of size %d: %v", ErrBadDelegation, h.Size, err)
	}
	if d.ServerID != h.ServerID || d.ServerPeer != h.ServerPeer {
		return fmt.Errorf("%w: the tree head of size %d is of %s (%s), its online key is delegated by %s (%s)", ErrBadDelegation, h.Size, h.ServerID, h.ServerPeer, d.ServerID, d.ServerPeer)
	}
	if err := c.verify(key, hs.Delegation, hs.DelegationSignature); err != nil {
		return fmt.Errorf("%w: its delegation, for the tree head of size %d, does not verify with the key of %s (%s)", ErrBadDelegation, h.Size, h.ServerID, h.ServerPeer)
	}
	if !d.Covers(h.Time) {
		return fmt.Errorf("%w: the tree head of size %d is dated %s, outside its window %s to %s", ErrBadDelegation, h.Size, FormatTime(h.Time), FormatTime(d.NotBefore), FormatTime(d.NotAfter))
	}
	digest := sha256.Sum256(sth.Encoded)
	if _, sv, err := parseECDSASignature(hs.Signature); err != nil || sv.Cmp(p256HalfOrder) > 0 {
		return fmt.Errorf("%w: the tree head of size %d: its online signature is not a DER ECDSA signature with s at most n/2 (§5.6)", ErrBadSignature, h.Size)
	}
	if !ecdsa.VerifyASN1(d.Key, digest[:], hs.Signature) {
		return fmt.Errorf("%w: the tree head of size %d does not verify with the online key %s delegated by %s", ErrBadSignature, h.Size, d.Fingerprint(), h.ServerID)
	}
	return nil
}

// CheckInclusion checks that the leaf st, whose bytes are leaf, is in
// the tree of head, a head whose signature was checked: the head is of
// the leaf's server, not older than the leaf, and proof leads from the
// leaf (index: its serial) to the head's root.
func CheckInclusion(leaf []byte, st *Statement, head *TreeHead, proof tlog.RecordProof) error {
	if head.ServerID != st.ServerID || head.ServerPeer != st.ServerPeer {
		return fmt.Errorf("%w: the tree head is of server %s (%s), the leaf of %s (%s)", ErrWrongServerKey, head.ServerID, head.ServerPeer, st.ServerID, st.ServerPeer)
	}
	if st.Time.After(head.Time) {
		return fmt.Errorf("%w: stamp time %s is after its tree head's %s", ErrBadProof, FormatTime(st.Time), FormatTime(head.Time))
	}
	return VerifyInclusion(leaf, st.Serial, head.Size, head.Root, proof)
}

// CheckConsistency checks that the log of the signed head nw extends
// the log of the signed head old (PROTOCOL.md §5.4): both heads signed by
// a trusted authority, the same one, old no later and no larger than nw,
// and the proof holds. Equal sizes need equal roots and no proof.
func (t *Trust) CheckConsistency(old, nw *SignedTreeHead, proof tlog.TreeProof) error {
	for _, h := range []struct {
		name string
		sth  *SignedTreeHead
	}{{"old", old}, {"new", nw}} {
		if err := t.checkHeadSignature(h.sth, nil); err != nil {
			return fmt.Errorf("%s head: %w", h.name, err)
		}
	}
	return CheckConsistency(old.Head, nw.Head, proof)
}

// checkConsistency is CheckConsistency of two heads whose signatures were
// checked.
func CheckConsistency(o, n *TreeHead, proof tlog.TreeProof) error {
	switch {
	case o.ServerID != n.ServerID:
		return fmt.Errorf("%w: the old head is of %s, the new one of %s", ErrDifferentServers, o.ServerID, n.ServerID)
	case o.Size == 0:
		return fmt.Errorf("%w: the old head is of the empty tree, which proves nothing", ErrInconsistent)
	case o.Time.After(n.Time):
		return fmt.Errorf("%w: the old head (size %d, %s) is later than the new one (size %d, %s)", ErrInconsistent, o.Size, FormatTime(o.Time), n.Size, FormatTime(n.Time))
	case o.Size > n.Size:
		return fmt.Errorf("%w: the old head's size %d is larger than the new head's %d", ErrInconsistent, o.Size, n.Size)
	case o.Size == n.Size && o.Root != n.Root:
		return fmt.Errorf("%w: two different trees of size %d (a forked log)", ErrInconsistent, o.Size)
	case o.Size == n.Size && len(proof) != 0:
		return fmt.Errorf("%w: two heads of size %d need no proof, got %d hashes", ErrInconsistent, o.Size, len(proof))
	case o.Size == n.Size:
		return nil
	}
	return VerifyConsistency(o.Size, o.Root, n.Size, n.Root, proof)
}

// checkAnswer checks that a stamp answers what the requester self asked
// of server: its document hash and nonce, for self, by server.
func CheckAnswer(st *Statement, hash, nonce []byte, self, server identity.Entry) error {
	switch {
	case !bytes.Equal(st.DocumentHash, hash):
		return fmt.Errorf("%w: server returned hash %x, we sent %x", ErrReplyMismatch, st.DocumentHash, hash)
	case !bytes.Equal(st.Nonce, nonce):
		return fmt.Errorf("%w: nonce differs (replayed or misrouted reply)", ErrReplyMismatch)
	case st.RequesterID != self.ID || st.RequesterPeer != self.PeerID:
		return fmt.Errorf("%w: stamped for %s (%s), we are %s", ErrReplyMismatch, st.RequesterID, st.RequesterPeer, self.ID)
	case st.ServerID != server.ID || st.ServerPeer != server.PeerID:
		return fmt.Errorf("%w: stamped by %s (%s), we asked %s (%s)", ErrReplyMismatch, st.ServerID, st.ServerPeer, server.ID, server.PeerID)
	}
	return nil
}

// CheckServerHead is CheckTreeHead for a head that answers a client of
// server: it must also be that server's, with its current key.
func (t *Trust) CheckServerHead(encoded, sig []byte, server identity.Entry, cache *HeadCache) (*SignedTreeHead, error) {
	sth, err := t.CheckTreeHead(encoded, sig, cache)
	if err != nil {
		return nil, err
	}
	return sth, checkHeadOf(sth.Head, server)
}

// checkHeadOf checks that a tree head that answers the requester is of
// the server it asked, with that server's current key.
func checkHeadOf(h *TreeHead, server identity.Entry) error {
	if h.ServerID != server.ID || h.ServerPeer != server.PeerID {
		return fmt.Errorf("%w: tree head of %s (%s), we asked %s (%s)", ErrReplyMismatch, h.ServerID, h.ServerPeer, server.ID, server.PeerID)
	}
	return nil
}
