package protocol

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"time"

	"github.com/tsnode/tsnode/identity"
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
	StampRequestTag  = "tsnode/stamp-request/v1"
	StampResponseTag = "tsnode/stamp-response/v1"
	StampReplyTag    = "tsnode/stamp-reply/v1"
)

// Response status codes. Anything but StatusOK carries a message.
const (
	StatusOK           = "ok"
	StatusBadRequest   = "bad-request"
	StatusPeerMismatch = "peer-mismatch"
	StatusUnknownID    = "unknown-requester"
	StatusInternal     = "internal-error"
	// StatusClockBehind: the server's clock reads earlier than the last
	// time it issued (beyond its tolerance); it issues no time until its
	// clock catches up (§2.4).
	StatusClockBehind = "clock-behind"
	// StatusShuttingDown: the server is stopping and takes no new stamp.
	StatusShuttingDown = "shutting-down"
)

// StampRequest is what a requester asks the server to stamp.
type StampRequest struct {
	RequesterID  identity.ID
	DocumentHash []byte
	Nonce        []byte
}

func (r *StampRequest) Encode() []byte {
	return EncodeRecord(StampRequestTag, []byte(r.RequesterID), []byte(HashAlgorithm), r.DocumentHash, r.Nonce)
}

func ParseStampRequest(b []byte) (*StampRequest, error) {
	f, err := DecodeRecord(b, StampRequestTag, 4)
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

func EncodeStampResponse(status string, payload []byte) []byte {
	return EncodeRecord(StampResponseTag, []byte(status), payload)
}

// openStampResponse checks a response against the request it answers and
// returns the signed statement and the signature. server is whom self
// asked; trust decides whose signature counts.
func OpenStampResponse(resp []byte, key *rsa.PrivateKey, req *StampRequest, trust *Trust, server, self identity.Entry) (*Statement, []byte, error) {
	f, err := DecodeRecord(resp, StampResponseTag, 2)
	if err != nil {
		return nil, nil, err
	}
	if status := string(f[0]); status != StatusOK {
		return nil, nil, Refusal(string(server.ID), f[0], f[1])
	}
	plain, err := Open(key, StampReplyTag, f[1])
	if err != nil {
		return nil, nil, err
	}
	rf, err := DecodeRecord(plain, StampReplyTag, 2)
	if err != nil {
		return nil, nil, err
	}
	enc, sig := bytes.Clone(rf[0]), bytes.Clone(rf[1])
	st, err := ParseStatement(enc)
	if err != nil {
		return nil, nil, err
	}
	if err := CheckAnswer(st, req.DocumentHash, req.Nonce, self, server); err != nil {
		return nil, nil, err
	}
	if err := trust.checkStatementSignature(st, enc, sig); err != nil {
		return nil, nil, err
	}
	return st, sig, nil
}
