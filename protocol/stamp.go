package protocol

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
)

// Stamp protocol /tsnode/stamp/1.0.0: one request and one response per
// stream. The request is sealed to the server's key; an accepted request
// is answered with the signed statement sealed to the requester's key.
const (
	StampProtocolID  = "/tsnode/stamp/1.0.0"
	StampServiceName = "tsnode.stamp"
	// MaxStampRequestSize bounds a sealed request (~680 bytes in practice).
	MaxStampRequestSize = 2 << 10
	// MaxStampResponseSize bounds a response (~1.5 KiB in practice).
	MaxStampResponseSize = 8 << 10
	// StampStreamTimeout bounds a whole exchange.
	StampStreamTimeout = 30 * time.Second
)

// Record tags and sealing contexts of the stamp protocol.
const (
	stampRequestTag  = "tsnode/stamp-request/v1"
	stampResponseTag = "tsnode/stamp-response/v1"
	stampReplyTag    = "tsnode/stamp-reply/v1"
)

// Response status codes. Anything but StatusOK carries a message.
const (
	StatusOK           = "ok"
	StatusBadRequest   = "bad-request"
	StatusPeerMismatch = "peer-mismatch"
	StatusUnknownID    = "unknown-requester"
	StatusInternal     = "internal-error"
)

// StampRequest is what a requester asks the server to stamp.
type StampRequest struct {
	RequesterID  identity.ID
	DocumentHash []byte
	Nonce        []byte
}

func (r *StampRequest) encode() []byte {
	return EncodeRecord(stampRequestTag, []byte(r.RequesterID), []byte(HashAlgorithm), r.DocumentHash, r.Nonce)
}

func parseStampRequest(b []byte) (*StampRequest, error) {
	f, err := DecodeRecord(b, stampRequestTag, 4)
	if err != nil {
		return nil, err
	}
	id, err := identity.ParseID(string(f[0]))
	if err != nil {
		return nil, fmt.Errorf("%w: requester: %v", ErrMalformed, err)
	}
	if string(f[1]) != HashAlgorithm {
		return nil, fmt.Errorf("%w: hash algorithm %q, want %q", ErrMalformed, truncate(f[1]), HashAlgorithm)
	}
	if len(f[2]) != HashSize {
		return nil, fmt.Errorf("%w: document hash is %d bytes, want %d", ErrMalformed, len(f[2]), HashSize)
	}
	if len(f[3]) != NonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes, want %d", ErrMalformed, len(f[3]), NonceSize)
	}
	return &StampRequest{RequesterID: id, DocumentHash: bytes.Clone(f[2]), Nonce: bytes.Clone(f[3])}, nil
}

// Stamper is the server's signing core, free of any network: it checks a
// request against the authenticated peer that sent it, assigns time and
// serial, and signs.
type Stamper struct {
	key       *rsa.PrivateKey
	self      identity.Entry
	dir       *identity.Directory
	now       func() time.Time
	signer    *LogSigner // if set, serials and times come from its log
	mu        sync.Mutex
	serial    uint64
	lastStamp time.Time
}

// UseLog makes every stamp a leaf of signer's durable log, which then
// assigns its serial and time: serials are never reused and times never
// go backwards across restarts, and one-shot stamps are auditable too.
func (s *Stamper) UseLog(signer *LogSigner) { s.signer = signer }

// NewStamper makes a Stamper for the server identity self whose private
// key is key. now may be nil (time.Now).
func NewStamper(key *rsa.PrivateKey, self identity.Entry, dir *identity.Directory, now func() time.Time) *Stamper {
	if now == nil {
		now = time.Now
	}
	return &Stamper{key: key, self: self, dir: dir, now: now}
}

// next returns the next serial and a UTC time that never goes backwards,
// even if the wall clock does.
func (s *Stamper) next() (uint64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now().UTC()
	if !t.After(s.lastStamp) {
		t = s.lastStamp.Add(time.Nanosecond)
	}
	s.lastStamp = t
	s.serial++
	return s.serial, t
}

// StampError is a refusal with a status code sent back to the requester.
type StampError struct {
	Status  string
	Message string
}

func (e *StampError) Error() string { return e.Status + ": " + e.Message }

// Handle answers one sealed request from the authenticated peer remote. It
// returns the sealed reply, or a *StampError to send back.
func (s *Stamper) Handle(remote peer.ID, sealed []byte) ([]byte, *Statement, error) {
	plain, err := Open(s.key, stampRequestTag, sealed)
	if err != nil {
		return nil, nil, &StampError{StatusBadRequest, err.Error()}
	}
	req, err := parseStampRequest(plain)
	if err != nil {
		return nil, nil, &StampError{StatusBadRequest, err.Error()}
	}
	// The id inside the message is only a claim: it must name the key the
	// connection was authenticated with. (The prototype trusted it and
	// built a file path from it.)
	claimed, err := s.dir.Lookup(req.RequesterID)
	if err != nil {
		return nil, nil, &StampError{StatusUnknownID, err.Error()}
	}
	if claimed.PeerID != remote {
		return nil, nil, &StampError{StatusPeerMismatch, fmt.Sprintf("request claims id %q (peer %s) but was sent by peer %s", req.RequesterID, claimed.PeerID, remote)}
	}
	var st *Statement
	if s.signer != nil {
		if st, err = s.logged(claimed, req); err != nil {
			return nil, nil, &StampError{StatusInternal, "the server could not log the stamp"}
		}
	} else {
		st = s.unlogged(claimed, req)
	}
	reply, err := s.seal(claimed, st)
	if err != nil {
		return nil, nil, &StampError{StatusInternal, err.Error()}
	}
	return reply, st, nil
}

// unlogged numbers a stamp from the Stamper's own counter and clock.
func (s *Stamper) unlogged(claimed identity.Entry, req *StampRequest) *Statement {
	serial, t := s.next()
	return &Statement{
		HashAlgorithm: HashAlgorithm,
		DocumentHash:  req.DocumentHash,
		Time:          t,
		Serial:        serial,
		RequesterID:   claimed.ID,
		RequesterPeer: claimed.PeerID,
		ServerID:      s.self.ID,
		ServerPeer:    s.self.PeerID,
		Nonce:         req.Nonce,
	}
}

func (s *Stamper) logged(requester identity.Entry, req *StampRequest) (*Statement, error) {
	type result struct {
		st  *LogStamp
		err error
	}
	ch := make(chan result, 1)
	s.signer.Submit(requester, req.DocumentHash, req.Nonce, func(st *LogStamp, err error) { ch <- result{st, err} })
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return r.st.Statement, nil
}

// seal signs st and seals it to the requester.
func (s *Stamper) seal(claimed identity.Entry, st *Statement) ([]byte, error) {
	enc := st.Encode()
	sig, err := Sign(s.key, enc)
	if err != nil {
		return nil, errors.New("signing failed")
	}
	reply, err := Seal(claimed.PublicKey, stampReplyTag, EncodeRecord(stampReplyTag, enc, sig))
	if err != nil {
		return nil, errors.New("sealing the reply failed")
	}
	return reply, nil
}

func encodeStampResponse(status string, payload []byte) []byte {
	return EncodeRecord(stampResponseTag, []byte(status), payload)
}

// openStampResponse checks a response against the request it answers and
// returns the signed statement and the signature. server is whom self
// asked; trust decides whose signature counts.
func openStampResponse(resp []byte, key *rsa.PrivateKey, req *StampRequest, trust *Trust, server, self identity.Entry) (*Statement, []byte, error) {
	f, err := DecodeRecord(resp, stampResponseTag, 2)
	if err != nil {
		return nil, nil, err
	}
	if status := string(f[0]); status != StatusOK {
		return nil, nil, fmt.Errorf("%w by %s: %s: %s", ErrRefused, server.ID, truncate(f[0]), string(f[1]))
	}
	plain, err := Open(key, stampReplyTag, f[1])
	if err != nil {
		return nil, nil, err
	}
	rf, err := DecodeRecord(plain, stampReplyTag, 2)
	if err != nil {
		return nil, nil, err
	}
	enc, sig := bytes.Clone(rf[0]), bytes.Clone(rf[1])
	st, err := ParseStatement(enc)
	if err != nil {
		return nil, nil, err
	}
	if err := checkAnswer(st, req.DocumentHash, req.Nonce, self, server); err != nil {
		return nil, nil, err
	}
	if err := trust.checkStatementSignature(st, enc, sig); err != nil {
		return nil, nil, err
	}
	return st, sig, nil
}
