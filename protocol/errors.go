package protocol

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors, testable with errors.Is.
var (
	// ErrMalformed: bytes that do not parse as the expected message.
	ErrMalformed = errors.New("malformed message")
	// ErrTooLarge: a frame longer than the protocol's maximum.
	ErrTooLarge = errors.New("message too large")
	// ErrOpen: a sealed box that does not open with this key.
	ErrOpen = errors.New("cannot open sealed message")

	// Receipt verification failures.
	ErrMalformedReceipt = errors.New("malformed receipt")
	ErrHashMismatch     = errors.New("document hash mismatch")
	ErrBadSignature     = errors.New("bad server signature")
	ErrWrongServerKey   = errors.New("wrong server key")
	ErrBadProof         = errors.New("bad inclusion proof")
	// ErrUntrustedSigner: signed in the name of an id that is not one of
	// the authorities the caller trusts (a requester's own key, say).
	ErrUntrustedSigner = errors.New("untrusted signer")
	// ErrRetiredKey: signed by a trusted authority's retired key, dated
	// at or after that key's rotation.
	ErrRetiredKey = errors.New("retired key")

	// Consistency proof failures.
	ErrInconsistent     = errors.New("inconsistent log")
	ErrDifferentServers = errors.New("tree heads of different servers")

	// Stamp exchange failures seen by a requester.
	ErrRefused       = errors.New("request refused")
	ErrReplyMismatch = errors.New("reply does not match request")
	// ErrShuttingDown: the server said it is stopping; what it had not
	// answered was not stamped.
	ErrShuttingDown = errors.New("server is shutting down")
	// ErrClockBehind: the server refused because its clock is behind the
	// last time it issued.
	ErrClockBehind = errors.New("server clock behind its last stamp")

	// Witness failures (PROTOCOL.md §13).
	// ErrBadCosignature: a cosignature that does not count (malformed,
	// of another head, by a witness not required, badly signed, dated
	// too far from its head).
	ErrBadCosignature = errors.New("bad cosignature")
	// ErrNotWitnessed: fewer valid cosignatures than required.
	ErrNotWitnessed = errors.New("not witnessed")
	// ErrHeadTime: a tree head dated too far from the witness's clock, or
	// before the last head it cosigned.
	ErrHeadTime = errors.New("tree head time refused")
	// ErrNoEquivocation: an evidence file whose heads can both be true.
	ErrNoEquivocation = errors.New("no equivocation proven")
	// ErrMalformedEvidence: an evidence file or message that does not
	// parse.
	ErrMalformedEvidence = errors.New("malformed evidence")

	// RFC 3161 token failures (§14.5).
	ErrMalformedToken = errors.New("malformed rfc3161 token")
	ErrBadTSAChain    = errors.New("bad rfc3161 certificate chain")
	ErrCertValidity   = errors.New("rfc3161 certificate not valid at genTime")
	ErrTokenNotLogged = errors.New("rfc3161 token not in the log")

	// Relay failures seen by a verifier.
	ErrTruncated = errors.New("document truncated")
	ErrChunk     = errors.New("bad document chunk")
)

// IsVerificationError reports whether err is a check that failed (a
// receipt, tree head or proof that is not valid), as opposed to a
// failure to perform the check.
func IsVerificationError(err error) bool {
	for _, e := range []error{ErrMalformedReceipt, ErrHashMismatch, ErrBadSignature, ErrWrongServerKey, ErrBadProof,
		ErrUntrustedSigner, ErrRetiredKey, ErrInconsistent, ErrDifferentServers, ErrBadCosignature, ErrNotWitnessed,
		ErrMalformedToken, ErrBadTSAChain, ErrCertValidity, ErrTokenNotLogged} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Refusal is the error for a refusal status (anything but StatusOK) that
// server answered with message: ErrRefused, and for the statuses a
// requester acts on, ErrShuttingDown or ErrClockBehind as well. A peer's
// status and message are cut short and printed quoted-safe.
func Refusal(server string, status, message []byte) error {
	st, msg := printable(status, 40), printable(message, 200)
	switch st {
	case StatusShuttingDown: // the status says it all
		return fmt.Errorf("%w by %s: %w", ErrRefused, server, ErrShuttingDown)
	case StatusClockBehind:
		return fmt.Errorf("%w by %s: %w (%s)", ErrRefused, server, ErrClockBehind, msg)
	}
	return fmt.Errorf("%w by %s: %s: %s", ErrRefused, server, st, msg)
}

// printable cuts a peer's text to n bytes for an error and replaces what
// is not printable, so that a peer cannot write to a terminal.
func printable(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, string(b))
}
