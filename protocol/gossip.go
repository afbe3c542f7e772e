package protocol

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
)

// The messages of the witness topics (PROTOCOL.md §13.2). Each carries
// the signatures that make it checkable by itself: pubsub's own message
// signing is off, so a message is only as good as what is inside it.

// Gossip message tags.
const (
	gossipHeadTag     = "tsnode/gossip-head/v1"
	gossipCosignedTag = "tsnode/gossip-cosigned/v1"
	gossipEvidenceTag = "tsnode/gossip-evidence/v1"
)

// MaxGossipMessageSize bounds a message of a witness topic; anything
// larger is dropped before it is parsed.
const MaxGossipMessageSize = 8 << 10

// Each authority has two topics: its heads and the evidence against it,
// which every witness follows and relays; and the witnesses'
// cosignatures, which only those who collect them (requesters, and the
// server that relays to them) follow, so that a witness's work does not
// grow with the number of witnesses.
const (
	TopicPrefix             = "/tsnode/heads/1.0.0/"
	CosignaturesTopicPrefix = "/tsnode/cosignatures/1.0.0/"
)

// Topic is the GossipSub topic of the heads of the authority id, and of
// the evidence against it.
func Topic(id identity.ID) string { return TopicPrefix + string(id) }

// CosignaturesTopic is the GossipSub topic of the cosignatures of the
// heads of the authority id.
func CosignaturesTopic(id identity.ID) string { return CosignaturesTopicPrefix + string(id) }

// IsCosigned reports whether data is a cosigned-head message (by its tag
// alone): what goes on CosignaturesTopic, and nothing else does.
func IsCosigned(data []byte) bool { return recordTag(data) == gossipCosignedTag }

// GossipMessage is one message of a witness topic: a signed head (from
// the authority), a cosigned head (a witness's cosignature with the head
// it cosigned), or evidence.
type GossipMessage struct {
	Head     *SignedTreeHead    // every kind but evidence
	Cosig    *SignedCosignature // cosigned heads only
	Evidence *Evidence          // evidence only
}

// EncodeGossipHead encodes an authority's signed head.
func EncodeGossipHead(h *SignedTreeHead) []byte {
	return EncodeRecord(gossipHeadTag, h.Encoded, h.Signature)
}

// EncodeGossipCosigned encodes a witness's cosignature of h.
func EncodeGossipCosigned(h *SignedTreeHead, c *SignedCosignature) []byte {
	return EncodeRecord(gossipCosignedTag, h.Encoded, h.Signature, c.Encoded, c.Signature)
}

// EncodeGossipEvidence encodes evidence.
func EncodeGossipEvidence(e *Evidence) []byte {
	path := make([]byte, 0, len(e.Path)*tlog.HashSize)
	for _, h := range e.Path {
		path = append(path, h[:]...)
	}
	return EncodeRecord(gossipEvidenceTag, e.First.Encoded, e.First.Signature, e.Second.Encoded, e.Second.Signature, path)
}

// ParseGossipMessage decodes a message of a witness topic. It checks the
// form only: every signature is left to the caller's policy.
func ParseGossipMessage(b []byte) (*GossipMessage, error) {
	if len(b) > MaxGossipMessageSize {
		return nil, fmt.Errorf("%w: gossip message of %d bytes, maximum %d", ErrTooLarge, len(b), MaxGossipMessageSize)
	}
	switch recordTag(b) {
	case gossipHeadTag:
		f, err := DecodeRecord(b, gossipHeadTag, 2)
		if err != nil {
			return nil, err
		}
		h, err := parseSignedHead(f[0], f[1])
		if err != nil {
			return nil, err
		}
		return &GossipMessage{Head: h}, nil
	case gossipCosignedTag:
		f, err := DecodeRecord(b, gossipCosignedTag, 4)
		if err != nil {
			return nil, err
		}
		h, err := parseSignedHead(f[0], f[1])
		if err != nil {
			return nil, err
		}
		c, err := ParseCosignature(f[2])
		if err != nil {
			return nil, err
		}
		if !c.Of(h.Head) {
			return nil, fmt.Errorf("%w: the cosignature is of another head than the one it came with", ErrMalformed)
		}
		return &GossipMessage{Head: h, Cosig: &SignedCosignature{Cosig: c, Encoded: f[2], Signature: f[3]}}, nil
	case gossipEvidenceTag:
		f, err := DecodeRecord(b, gossipEvidenceTag, 5)
		if err != nil {
			return nil, err
		}
		e := &Evidence{}
		if e.First, err = parseSignedHead(f[0], f[1]); err != nil {
			return nil, err
		}
		if e.Second, err = parseSignedHead(f[2], f[3]); err != nil {
			return nil, err
		}
		if len(f[4])%tlog.HashSize != 0 {
			return nil, fmt.Errorf("%w: evidence path of %d bytes, not a multiple of %d", ErrMalformed, len(f[4]), tlog.HashSize)
		}
		for p := f[4]; len(p) > 0; p = p[tlog.HashSize:] {
			e.Path = append(e.Path, tlog.Hash(p[:tlog.HashSize]))
		}
		return &GossipMessage{Evidence: e}, nil
	}
	return nil, fmt.Errorf("%w: not a witness topic message (record type %q)", ErrMalformed, truncate([]byte(recordTag(b))))
}

func parseSignedHead(enc, sig []byte) (*SignedTreeHead, error) {
	h, err := ParseTreeHead(enc)
	if err != nil {
		return nil, err
	}
	if len(sig) == 0 {
		return nil, fmt.Errorf("%w: tree head of size %d without a signature", ErrMalformed, h.Size)
	}
	return &SignedTreeHead{Head: h, Encoded: enc, Signature: sig}, nil
}

// recordTag returns the tag of record b, or "" if b does not start with
// a whole field.
func recordTag(b []byte) string {
	if len(b) < 4 {
		return ""
	}
	l := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	if l > uint64(len(b)-4) || l > 64 {
		return ""
	}
	return string(b[4 : 4+l])
}
