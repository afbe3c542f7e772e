package protocol

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tsnode/tsnode/identity"
)

// Relay protocol /tsnode/relay/1.0.0: the requester sends a header sealed
// to the verifier's key (its id, a fresh AES-256 session key, the receipt
// and the document size), then the document as authenticated chunks; the
// verifier answers with one verdict sealed under the session key. No
// shared password: the prototype's AES-CBC with a hard-coded password and
// unchecked unpadding is gone.
const (
	RelayProtocolID  = "/tsnode/relay/1.0.0"
	RelayServiceName = "tsnode.relay"
	// MaxRelayHeaderSize bounds the sealed header frame.
	MaxRelayHeaderSize = MaxReceiptSize + SealOverhead + 1024
	// MaxRelayFrameSize bounds a chunk frame.
	MaxRelayFrameSize = maxChunkFrame
	// MaxVerdictSize bounds the verdict frame.
	MaxVerdictSize = 4 << 10
	// RelayIdleTimeout bounds the wait for each frame; a whole relay may
	// take longer, as documents have any size.
	RelayIdleTimeout = 30 * time.Second
	// DefaultMaxDocumentSize is the largest document a verifier accepts
	// unless configured otherwise: it bounds the disk a relay may fill
	// with --store and, with full chunks required, how long it may last.
	DefaultMaxDocumentSize = 4 << 30
)

const (
	RelayHeaderTag  = "tsnode/relay-header/v1"
	relayVerdictTag = "tsnode/relay-verdict/v1"
	SessionKeySize  = 32
)

// Verdict codes.
const (
	VerdictValid            = "valid"
	VerdictHashMismatch     = "hash-mismatch"
	VerdictBadSignature     = "bad-signature"
	VerdictBadProof         = "bad-inclusion-proof"
	VerdictUntrustedSigner  = "untrusted-signer"
	VerdictRetiredKey       = "retired-key"
	VerdictWrongServerKey   = "wrong-server-key"
	VerdictMalformedReceipt = "malformed-receipt"
	VerdictTruncated        = "truncated"
	VerdictBadChunk         = "bad-chunk"
	VerdictSizeMismatch     = "size-mismatch"
	VerdictTooLarge         = "too-large"
	VerdictPeerMismatch     = "peer-mismatch"
	VerdictNotWitnessed     = "not-witnessed"
	VerdictInternal         = "internal-error"
)

// Verdict is a verifier's answer about one relayed document.
type Verdict struct {
	Verifier identity.ID
	Code     string
	Message  string
}

// Valid reports whether the verifier accepted the document and receipt.
func (v *Verdict) Valid() bool { return v.Code == VerdictValid }

func (v *Verdict) String() string {
	if v.Message == "" {
		return v.Code
	}
	return v.Code + ": " + v.Message
}

// verdictFor maps a verification error to its verdict code.
func VerdictFor(err error) string {
	for _, m := range []struct {
		err  error
		code string
	}{
		{ErrHashMismatch, VerdictHashMismatch},
		{ErrBadSignature, VerdictBadSignature},
		{ErrBadProof, VerdictBadProof},
		{ErrUntrustedSigner, VerdictUntrustedSigner},
		{ErrRetiredKey, VerdictRetiredKey},
		{ErrWrongServerKey, VerdictWrongServerKey},
		{ErrMalformedReceipt, VerdictMalformedReceipt},
		{ErrNotWitnessed, VerdictNotWitnessed},
		{ErrBadCosignature, VerdictNotWitnessed},
		{ErrTruncated, VerdictTruncated},
		{ErrChunk, VerdictBadChunk},
	} {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return VerdictInternal
}

// relayHeader opens a relay.
type RelayHeader struct {
	SenderID     identity.ID
	SessionKey   []byte
	Receipt      []byte
	DocumentSize uint64
}

func NewSessionKey() ([]byte, error) {
	k := make([]byte, SessionKeySize)
	_, err := rand.Read(k)
	return k, err
}

func (h *RelayHeader) Encode() []byte {
	return EncodeRecord(RelayHeaderTag, []byte(h.SenderID), h.SessionKey, h.Receipt, u64(h.DocumentSize))
}

func ParseRelayHeader(b []byte) (*RelayHeader, error) {
	f, err := DecodeRecord(b, RelayHeaderTag, 4)
	if err != nil {
		return nil, err
	}
	id, err := identity.ParseID(string(f[0]))
	if err != nil {
		return nil, fmt.Errorf("%w: sender: %v", ErrMalformed, err)
	}
	if len(f[1]) != SessionKeySize {
		return nil, fmt.Errorf("%w: session key is %d bytes, want %d", ErrMalformed, len(f[1]), SessionKeySize)
	}
	size, err := parseU64("document size", f[3])
	if err != nil {
		return nil, err
	}
	return &RelayHeader{SenderID: id, SessionKey: bytes.Clone(f[1]), Receipt: bytes.Clone(f[2]), DocumentSize: size}, nil
}

// maxVerdictMessage bounds the message of a sealed verdict.
const maxVerdictMessage = 2 << 10

func SealVerdict(key []byte, v *Verdict) ([]byte, error) {
	aead, err := NewGCM(key)
	if err != nil {
		return nil, err
	}
	// The message may quote a relayed receipt at length: cut it so the
	// sealed verdict always fits MaxVerdictSize.
	msg := v.Message
	if len(msg) > maxVerdictMessage {
		msg = strings.ToValidUTF8(msg[:maxVerdictMessage], "") + "..."
	}
	pt := EncodeRecord(relayVerdictTag, []byte(v.Verifier), []byte(v.Code), []byte(msg))
	return aead.Seal(nil, directionNonce(dirVerifierOut, 0), pt, []byte(relayVerdictTag)), nil
}

func OpenVerdict(key, b []byte) (*Verdict, error) {
	aead, err := NewGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, directionNonce(dirVerifierOut, 0), b, []byte(relayVerdictTag))
	if err != nil {
		return nil, fmt.Errorf("%w: verdict does not authenticate", ErrOpen)
	}
	f, err := DecodeRecord(pt, relayVerdictTag, 3)
	if err != nil {
		return nil, err
	}
	verifier, err := identity.ParseID(string(f[0]))
	if err != nil {
		return nil, fmt.Errorf("%w: verdict: %v", ErrMalformed, err)
	}
	if !slices.Contains(verdictCodes, string(f[1])) {
		return nil, fmt.Errorf("%w: verdict code %q is not one of §9.5", ErrMalformed, truncate(f[1]))
	}
	return &Verdict{Verifier: verifier, Code: string(f[1]), Message: string(f[2])}, nil
}

// verdictCodes are the codes of §9.5.
var verdictCodes = []string{VerdictValid, VerdictHashMismatch, VerdictBadSignature, VerdictBadProof, VerdictUntrustedSigner,
	VerdictRetiredKey, VerdictWrongServerKey, VerdictMalformedReceipt, VerdictTruncated, VerdictBadChunk,
	VerdictSizeMismatch, VerdictPeerMismatch, VerdictTooLarge, VerdictNotWitnessed, VerdictInternal}
