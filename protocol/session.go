package protocol

import (
	"bytes"
	"crypto/cipher"
	"crypto/rsa"
	"encoding/binary"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
)

// Session protocol /tsnode/stamp/2.0.0: one RSA-OAEP key exchange each
// way per stream, then any number of stamp requests and replies sealed
// with AES-256-GCM under those keys, several in flight, replies matched
// by request id. Stamps are leaves of the server's Merkle log; a reply
// carries the leaf, its inclusion proof and the signed tree head.
const (
	SessionProtocolID  = "/tsnode/stamp/2.0.0"
	SessionServiceName = "tsnode.session"
	// MaxSessionHelloSize bounds the sealed hello and its answer.
	MaxSessionHelloSize = 2 << 10
	// MaxSessionRequestSize bounds a sealed stamp request frame.
	MaxSessionRequestSize = 256
	// MaxSessionReplySize bounds a sealed reply frame: a leaf, a proof of
	// up to 64 hashes and a signed tree head.
	MaxSessionReplySize = 8 << 10
	// MaxInFlight bounds the unanswered requests of one session; the
	// server stops reading until replies catch up.
	MaxInFlight = 1024
	// SessionIdleTimeout closes a session with nothing to read or write.
	SessionIdleTimeout = 2 * time.Minute
	// SessionHelloTimeout bounds the key exchange.
	SessionHelloTimeout = 30 * time.Second
	// SessionLinger is how long a server that ends a session (a
	// violation, or its shutdown) waits, after its last reply and the
	// close of its side, for the requester to close its own before it
	// resets the stream: a reset may discard replies not yet read (§7.7).
	SessionLinger = 2 * time.Second
	// NoticeID is the request id of the server's shutdown notice (§7.7).
	NoticeID = ^uint64(0)
)

const (
	sessionHelloTag   = "tsnode/session-hello/v1"
	SessionAcceptTag  = "tsnode/session-accept/v1"
	SessionKeyTag     = "tsnode/session-key/v1"
	SessionRequestTag = "tsnode/session-request/v1"
	SessionReplyTag   = "tsnode/session-reply/v1"
)

// sessionCipher seals or opens one direction of a session: the GCM nonce
// is the frame's sequence number, so frames cannot be replayed, dropped
// or reordered without failing to open.
type SessionCipher struct {
	aead cipher.AEAD
	ad   []byte
	seq  uint64
}

func NewSessionCipher(key []byte, tag string) (*SessionCipher, error) {
	aead, err := NewGCM(key)
	if err != nil {
		return nil, err
	}
	return &SessionCipher{aead: aead, ad: []byte(tag)}, nil
}

func (c *SessionCipher) nonce() []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], c.seq)
	c.seq++
	return n[:]
}

func (c *SessionCipher) Seal(pt []byte) []byte { return c.aead.Seal(nil, c.nonce(), pt, c.ad) }

func (c *SessionCipher) Open(ct []byte) ([]byte, error) {
	seq := c.seq
	pt, err := c.aead.Open(nil, c.nonce(), ct, c.ad)
	if err != nil {
		return nil, fmt.Errorf("%w: session frame %d does not authenticate", ErrOpen, seq)
	}
	return pt, nil
}

// sessionRequest is one stamp request inside a session.
type SessionRequest struct {
	ID    uint64
	Hash  []byte
	Nonce []byte
}

func (r *SessionRequest) Encode() []byte {
	return EncodeRecord(SessionRequestTag, u64(r.ID), r.Hash, r.Nonce)
}

func ParseSessionRequest(b []byte) (*SessionRequest, error) {
	f, err := DecodeRecord(b, SessionRequestTag, 3)
	if err != nil {
		return nil, err
	}
	id, err := parseU64("request id", f[0])
	if err != nil {
		return nil, err
	}
	if len(f[1]) != HashSize {
		return nil, fmt.Errorf("%w: document hash is %d bytes, want %d", ErrMalformed, len(f[1]), HashSize)
	}
	if len(f[2]) != NonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(f[2]), NonceSize)
	}
	return &SessionRequest{ID: id, Hash: bytes.Clone(f[1]), Nonce: bytes.Clone(f[2])}, nil
}

// encodeSessionReply encodes a stamp, or (st == nil) a refusal.
func EncodeSessionReply(id uint64, st *LogStamp, status, message string) []byte {
	if st == nil {
		return EncodeRecord(SessionReplyTag, u64(id), []byte(status), []byte(message), nil, nil, nil)
	}
	// EncodeRecord with the proof's hashes written in place.
	leaf := st.EncodedLeaf()
	n := 7*4 + len(SessionReplyTag) + 8 + len(StatusOK) + len(leaf) + len(st.Proof)*tlog.HashSize + len(st.Head.Encoded) + len(st.Head.Signature)
	out := make([]byte, 0, n)
	out = appendField(out, []byte(SessionReplyTag))
	out = appendField(out, binary.BigEndian.AppendUint64(make([]byte, 0, 8), id))
	out = appendField(out, []byte(StatusOK))
	out = appendField(out, leaf)
	out = binary.BigEndian.AppendUint32(out, uint32(len(st.Proof)*tlog.HashSize))
	for _, h := range st.Proof {
		out = append(out, h[:]...)
	}
	out = appendField(out, st.Head.Encoded)
	return appendField(out, st.Head.Signature)
}

// sessionReply is a decoded reply; stamp is nil for a refusal.
type SessionReply struct {
	ID      uint64
	Status  string
	Message string
	Leaf    []byte
	Proof   tlog.RecordProof
	Head    []byte
	Sig     []byte
}

func ParseSessionReply(b []byte) (*SessionReply, error) {
	f, err := DecodeRecord(b, SessionReplyTag, 6)
	if err != nil {
		return nil, err
	}
	r := &SessionReply{Status: string(f[1])}
	if r.ID, err = parseU64("request id", f[0]); err != nil {
		return nil, err
	}
	if r.Status != StatusOK {
		// A refusal has one encoding: its proof, head and signature
		// fields are empty (§7.6).
		if len(f[3])+len(f[4])+len(f[5]) != 0 {
			return nil, fmt.Errorf("%w: a refusal with a proof, head or signature", ErrMalformed)
		}
		r.Message = string(f[2])
		return r, nil
	}
	if len(f[3])%tlog.HashSize != 0 || len(f[3]) > 64*tlog.HashSize {
		return nil, fmt.Errorf("%w: inclusion proof of %d bytes", ErrMalformed, len(f[3]))
	}
	r.Leaf = bytes.Clone(f[2])
	r.Proof = make(tlog.RecordProof, 0, len(f[3])/tlog.HashSize)
	for p := f[3]; len(p) > 0; p = p[tlog.HashSize:] {
		r.Proof = append(r.Proof, tlog.Hash(p[:tlog.HashSize]))
	}
	// The head and signature alias b: most replies carry the head of the
	// previous one, which is then not kept (Session.checkHead copies a
	// new head).
	r.Head, r.Sig = f[4], f[5]
	return r, nil
}

// sessionHello opens a session: the requester's id and its request key.
func SealSessionHello(server *rsa.PublicKey, requester identity.ID, requestKey []byte) ([]byte, error) {
	return Seal(server, sessionHelloTag, EncodeRecord(sessionHelloTag, []byte(requester), requestKey))
}

func OpenSessionHello(key *rsa.PrivateKey, b []byte) (identity.ID, []byte, error) {
	pt, err := Open(key, sessionHelloTag, b)
	if err != nil {
		return "", nil, err
	}
	f, err := DecodeRecord(pt, sessionHelloTag, 2)
	if err != nil {
		return "", nil, err
	}
	id, err := identity.ParseID(string(f[0]))
	if err != nil {
		return "", nil, fmt.Errorf("%w: requester: %v", ErrMalformed, err)
	}
	if len(f[1]) != SessionKeySize {
		return "", nil, fmt.Errorf("%w: request key is %d bytes, want %d", ErrMalformed, len(f[1]), SessionKeySize)
	}
	return id, bytes.Clone(f[1]), nil
}

// SealSessionAccept encodes an ok accept (§7.3): the reply key, sealed
// to the requester's key.
func SealSessionAccept(requester *rsa.PublicKey, replyKey []byte) ([]byte, error) {
	sealed, err := Seal(requester, SessionKeyTag, EncodeRecord(SessionKeyTag, replyKey))
	if err != nil {
		return nil, err
	}
	return EncodeRecord(SessionAcceptTag, []byte(StatusOK), sealed), nil
}

// EncodeSessionRefusal encodes an accept that refuses the session.
func EncodeSessionRefusal(status, message string) []byte {
	return EncodeRecord(SessionAcceptTag, []byte(status), []byte(message))
}

// OpenSessionAccept decodes server's accept with the requester's key and
// returns the reply key. Another status than ok is an error wrapping
// ErrRefused that quotes the server; anything else wraps ErrMalformed or
// ErrOpen.
func OpenSessionAccept(key *rsa.PrivateKey, b []byte, server identity.ID) ([]byte, error) {
	f, err := DecodeRecord(b, SessionAcceptTag, 2)
	if err != nil {
		return nil, err
	}
	if string(f[0]) != StatusOK {
		return nil, Refusal(string(server), f[0], f[1])
	}
	pt, err := Open(key, SessionKeyTag, f[1])
	if err != nil {
		return nil, err
	}
	kf, err := DecodeRecord(pt, SessionKeyTag, 1)
	if err != nil {
		return nil, err
	}
	if len(kf[0]) != SessionKeySize {
		return nil, fmt.Errorf("%w: session reply key is %d bytes, want %d", ErrMalformed, len(kf[0]), SessionKeySize)
	}
	return bytes.Clone(kf[0]), nil
}
