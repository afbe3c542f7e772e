package protocol

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
)

// StatementTag is the first field of a signed timestamp statement: domain
// separation and format version in one.
const StatementTag = "tsnode-timestamp-v1"

// HashAlgorithm names the only document hash in use.
const HashAlgorithm = "sha-256"

// HashSize and NonceSize are the byte lengths of a document hash and of a
// requester's nonce.
const (
	HashSize  = sha256.Size
	NonceSize = 32
)

// TimeLayout is RFC 3339 in UTC with exactly nine fractional digits, so
// each instant has one encoding.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// Statement is what a timestamp server signs: every field that matters,
// so a signature cannot be moved to another document, time, serial or
// party. (The prototype signed SHA-256 of a constant string.)
type Statement struct {
	HashAlgorithm string
	DocumentHash  []byte
	Time          time.Time
	Serial        uint64
	RequesterID   identity.ID
	RequesterPeer peer.ID
	ServerID      identity.ID
	ServerPeer    peer.ID
	Nonce         []byte
}

// FormatTime renders t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a TimeLayout time, refusing any other spelling.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil || FormatTime(t) != s {
		return time.Time{}, fmt.Errorf("%w: time %q is not UTC RFC 3339 with nine fractional digits", ErrMalformed, s)
	}
	return t, nil
}

// Encode returns the canonical bytes that are signed.
func (s *Statement) Encode() []byte { return s.encode(StatementTag) }

func (s *Statement) encode(tag string) []byte {
	return s.EncodeWith(tag, s.RequesterPeer.String(), s.ServerPeer.String())
}

// EncodeWith is encode with the peer IDs' strings already computed
// (they must be RequesterPeer.String() and ServerPeer.String()): base58
// encoding is a large part of the cost of a leaf.
func (s *Statement) EncodeWith(tag, requesterPeer, serverPeer string) []byte {
	var t [len(TimeLayout)]byte
	return EncodeRecord(tag,
		[]byte(s.HashAlgorithm),
		s.DocumentHash,
		s.Time.UTC().AppendFormat(t[:0], TimeLayout),
		u64(s.Serial),
		[]byte(s.RequesterID),
		[]byte(requesterPeer),
		[]byte(s.ServerID),
		[]byte(serverPeer),
		s.Nonce,
	)
}

// ParseStatement decodes and validates canonical statement bytes.
func ParseStatement(b []byte) (*Statement, error) { return parseStatement(b, StatementTag, nil) }

// knownParties lets a parser that knows whom a statement should name
// skip decoding: an id or peer ID field byte-equal to the expected one's
// canonical encoding is that one, which is what full parsing would
// conclude. Any other field is parsed in full, so the result and the
// errors are those of ParseStatement / ParseLeaf. It also remembers the
// last time it parsed. Not safe for concurrent use.
type KnownParties struct {
	parties  []knownParty
	lastTime string
	lastT    time.Time
}

type knownParty struct {
	id      identity.ID
	peer    peer.ID
	peerStr string
}

// newKnownParties expects the given entries; an entry whose id or peer
// ID would not survive parsing is left out (parsed in full).
func NewKnownParties(entries ...identity.Entry) *KnownParties {
	k := &KnownParties{}
	for _, e := range entries {
		if _, err := identity.ParseID(string(e.ID)); err != nil {
			continue
		}
		str := e.PeerID.String()
		if p, err := identity.ParsePeerID(str); err != nil || p != e.PeerID {
			continue
		}
		k.parties = append(k.parties, knownParty{id: e.ID, peer: e.PeerID, peerStr: str})
	}
	return k
}

func (k *KnownParties) id(b []byte) (identity.ID, error) {
	if k != nil {
		for i := range k.parties {
			if string(b) == string(k.parties[i].id) {
				return k.parties[i].id, nil
			}
		}
	}
	return identity.ParseID(string(b))
}

func (k *KnownParties) peer(b []byte) (peer.ID, error) {
	if k != nil {
		for i := range k.parties {
			if string(b) == k.parties[i].peerStr {
				return k.parties[i].peer, nil
			}
		}
	}
	return identity.ParsePeerID(string(b))
}

func (k *KnownParties) time(b []byte) (time.Time, error) {
	if k == nil {
		return ParseTime(string(b))
	}
	if k.lastTime != "" && string(b) == k.lastTime {
		return k.lastT, nil
	}
	t, err := ParseTime(string(b))
	if err == nil {
		k.lastTime, k.lastT = string(b), t
	}
	return t, err
}

// parseLeafKnown is ParseLeaf with the fast path of known parties.
func ParseLeafKnown(b []byte, known *KnownParties) (*Statement, error) {
	return parseStatement(b, LeafTag, known)
}

// parseStatement parses a statement or leaf; known may be nil.
func parseStatement(b []byte, tag string, known *KnownParties) (*Statement, error) {
	f, err := DecodeRecord(b, tag, 9)
	if err != nil {
		return nil, err
	}
	s := &Statement{HashAlgorithm: HashAlgorithm, DocumentHash: bytes.Clone(f[1]), Nonce: bytes.Clone(f[8])}
	if string(f[0]) != HashAlgorithm {
		return nil, fmt.Errorf("%w: hash algorithm %q, want %q", ErrMalformed, truncate(f[0]), HashAlgorithm)
	}
	if len(s.DocumentHash) != HashSize {
		return nil, fmt.Errorf("%w: document hash is %d bytes, want %d", ErrMalformed, len(s.DocumentHash), HashSize)
	}
	if s.Time, err = known.time(f[2]); err != nil {
		return nil, err
	}
	if s.Serial, err = parseU64("serial", f[3]); err != nil {
		return nil, err
	}
	if s.RequesterID, err = known.id(f[4]); err != nil {
		return nil, fmt.Errorf("%w: requester: %v", ErrMalformed, err)
	}
	if s.RequesterPeer, err = known.peer(f[5]); err != nil {
		return nil, fmt.Errorf("%w: requester peer ID: %v", ErrMalformed, err)
	}
	if s.ServerID, err = known.id(f[6]); err != nil {
		return nil, fmt.Errorf("%w: server: %v", ErrMalformed, err)
	}
	if s.ServerPeer, err = known.peer(f[7]); err != nil {
		return nil, fmt.Errorf("%w: server peer ID: %v", ErrMalformed, err)
	}
	if len(s.Nonce) != NonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(s.Nonce), NonceSize)
	}
	return s, nil
}

// Sign signs data with RSASSA-PKCS1-v1_5 over SHA-256(data).
func Sign(priv *rsa.PrivateKey, data []byte) ([]byte, error) {
	digest := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	if err != nil {
		return nil, fmt.Errorf("failed to sign: %w", err)
	}
	return sig, nil
}
