package protocol

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Log protocol /tsnode/log/1.0.0 (PROTOCOL.md §8): ask a server for its
// latest signed tree head and, optionally, for the proof that the tree of
// size new extends the tree of size old (new 0: the latest head's size).
const (
	LogProtocolID      = "/tsnode/log/1.0.0"
	LogServiceName     = "tsnode.log"
	MaxLogRequestSize  = 64
	MaxLogResponseSize = 8 << 10
	LogStreamTimeout   = 30 * time.Second
	// LogEmptyMessage is the bad-request message of a server whose log
	// has no signed head yet (§8.3): a client reads it as size 0.
	LogEmptyMessage = "the log is empty"
)

const (
	logRequestTag  = "tsnode/log-request/v1"
	logResponseTag = "tsnode/log-response/v1"
)

// EncodeLogRequest encodes a log request (§8.2).
func EncodeLogRequest(oldSize, newSize uint64) []byte {
	return EncodeRecord(logRequestTag, u64(oldSize), u64(newSize))
}

// ParseLogRequest decodes a log request.
func ParseLogRequest(b []byte) (oldSize, newSize uint64, err error) {
	f, err := DecodeRecord(b, logRequestTag, 2)
	if err != nil {
		return 0, 0, err
	}
	if oldSize, err = parseU64("old size", f[0]); err != nil {
		return 0, 0, err
	}
	if newSize, err = parseU64("new size", f[1]); err != nil {
		return 0, 0, err
	}
	return oldSize, newSize, nil
}

// LogResponse is a decoded log response (§8.3): for StatusOK the latest
// signed head's bytes, its signature and the consistency proof asked for;
// otherwise Message says why.
type LogResponse struct {
	Status    string
	Message   string
	Head, Sig []byte
	Proof     tlog.TreeProof
}

// Encode encodes the response.
func (r *LogResponse) Encode() []byte {
	if r.Status != StatusOK {
		return EncodeRecord(logResponseTag, []byte(r.Status), []byte(r.Message), nil, nil)
	}
	proof := make([]byte, 0, len(r.Proof)*tlog.HashSize)
	for _, h := range r.Proof {
		proof = append(proof, h[:]...)
	}
	return EncodeRecord(logResponseTag, []byte(StatusOK), r.Head, r.Sig, proof)
}

// ParseLogResponse decodes a log response. The tree head is not checked
// here: Trust.CheckTreeHead does that.
func ParseLogResponse(b []byte) (*LogResponse, error) {
	f, err := DecodeRecord(b, logResponseTag, 4)
	if err != nil {
		return nil, err
	}
	if string(f[0]) != StatusOK {
		// A refusal has one encoding: signature and proof empty (§8.3).
		if len(f[2])+len(f[3]) != 0 {
			return nil, fmt.Errorf("%w: a refusal with a signature or proof", ErrMalformed)
		}
		return &LogResponse{Status: string(f[0]), Message: string(f[1])}, nil
	}
	if len(f[3])%tlog.HashSize != 0 {
		return nil, fmt.Errorf("%w: consistency proof of %d bytes", ErrMalformed, len(f[3]))
	}
	r := &LogResponse{Status: StatusOK, Head: f[1], Sig: f[2]}
	for p := f[3]; len(p) > 0; p = p[tlog.HashSize:] {
		r.Proof = append(r.Proof, tlog.Hash(p[:tlog.HashSize]))
	}
	return r, nil
}
