package protocol

import "errors"

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

	// Relay failures seen by a verifier.
	ErrTruncated = errors.New("document truncated")
	ErrChunk     = errors.New("bad document chunk")
)

// IsVerificationError reports whether err is a check that failed (a
// receipt, tree head or proof that is not valid), as opposed to a
// failure to perform the check.
func IsVerificationError(err error) bool {
	for _, e := range []error{ErrMalformedReceipt, ErrHashMismatch, ErrBadSignature, ErrWrongServerKey, ErrBadProof,
		ErrUntrustedSigner, ErrRetiredKey, ErrInconsistent, ErrDifferentServers} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
