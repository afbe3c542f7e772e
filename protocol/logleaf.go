package protocol

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Log protocol /tsnode/log/1.1.0 (PROTOCOL.md §8.5): /tsnode/log/1.0.0,
// whose requests it answers the same way, and the leaf request: the leaf
// at a serial and its inclusion proof in the latest signed head.
const (
	LogProtocolV11ID = "/tsnode/log/1.1.0"
	// MaxLogLeafResponseSize bounds a leaf response: a head, its
	// signature, a leaf (at most MaxLogLeafSize) and a proof of at most
	// 63 hashes.
	MaxLogLeafResponseSize = 16 << 10
	// MaxLogLeafSize bounds the leaf a leaf response carries.
	MaxLogLeafSize = 4 << 10
)

const (
	logLeafRequestTag  = "tsnode/log-leaf-request/v1"
	logLeafResponseTag = "tsnode/log-leaf-response/v1"
)

// EncodeLogLeafRequest encodes a leaf request for serial (§8.5).
func EncodeLogLeafRequest(serial uint64) []byte { return EncodeRecord(logLeafRequestTag, u64(serial)) }

// ParseLogLeafRequest decodes a leaf request.
func ParseLogLeafRequest(b []byte) (uint64, error) {
	f, err := DecodeRecord(b, logLeafRequestTag, 1)
	if err != nil {
		return 0, err
	}
	return parseU64("serial", f[0])
}

// LogLeafResponse is a decoded leaf response (§8.5): for StatusOK the
// latest signed head, its signature, the leaf asked for and its
// inclusion proof in that head; otherwise Message says why.
type LogLeafResponse struct {
	Status    string
	Message   string
	Head, Sig []byte
	Leaf      []byte
	Proof     tlog.RecordProof
}

// Encode encodes the response.
func (r *LogLeafResponse) Encode() []byte {
	if r.Status != StatusOK {
		return EncodeRecord(logLeafResponseTag, []byte(r.Status), []byte(r.Message), nil, nil, nil)
	}
	proof := make([]byte, 0, len(r.Proof)*tlog.HashSize)
	for _, h := range r.Proof {
		proof = append(proof, h[:]...)
	}
	return EncodeRecord(logLeafResponseTag, []byte(StatusOK), r.Head, r.Sig, r.Leaf, proof)
}

// ParseLogLeafResponse decodes a leaf response; the head and the proof
// are not checked here (Trust.CheckTSAInclusion and CheckServerHead are).
func ParseLogLeafResponse(b []byte) (*LogLeafResponse, error) {
	f, err := DecodeRecord(b, logLeafResponseTag, 5)
	if err != nil {
		return nil, err
	}
	if string(f[0]) != StatusOK {
		if len(f[2])+len(f[3])+len(f[4]) != 0 {
			return nil, fmt.Errorf("%w: a refusal with a signature, leaf or proof", ErrMalformed)
		}
		return &LogLeafResponse{Status: string(f[0]), Message: string(f[1])}, nil
	}
	if len(f[3]) == 0 || len(f[3]) > MaxLogLeafSize {
		return nil, fmt.Errorf("%w: a leaf of %d bytes (want 1 to %d)", ErrMalformed, len(f[3]), MaxLogLeafSize)
	}
	if len(f[4])%tlog.HashSize != 0 || len(f[4]) > 63*tlog.HashSize {
		return nil, fmt.Errorf("%w: inclusion proof of %d bytes", ErrMalformed, len(f[4]))
	}
	r := &LogLeafResponse{Status: StatusOK, Head: f[1], Sig: f[2], Leaf: f[3]}
	for p := f[4]; len(p) > 0; p = p[tlog.HashSize:] {
		r.Proof = append(r.Proof, tlog.Hash(p[:tlog.HashSize]))
	}
	return r, nil
}
