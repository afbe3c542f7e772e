package stamp

import (
	"errors"

	"github.com/tsnode/tsnode/protocol"
)

// Failure says whether a failed stamp may be asked again, and at what
// risk: a request the server may have read may have been logged.
type Failure int

const (
	// Final: an answer failed its checks, or the server refused for good;
	// asking again would not help.
	Final Failure = iota
	// NotRead: the server cannot have read the request (it was never
	// sent, or the server refused it as shutting-down or clock-behind, or
	// sent the shutdown notice before reading it): asking again is safe.
	NotRead
	// MaybeRead: the stream failed after the request was sent and before
	// its answer: the server may have logged a stamp that was never
	// answered, and asking again issues a second serial for the document.
	MaybeRead
)

// Classify tells what a stamp error means for a retry.
func Classify(err error) Failure {
	if errors.Is(err, protocol.ErrShuttingDown) || errors.Is(err, protocol.ErrClockBehind) {
		return NotRead
	}
	var se *streamError
	if errors.As(err, &se) {
		if se.sent {
			return MaybeRead
		}
		return NotRead
	}
	return Final
}

// streamError marks a failure of the stream itself (not of an answer's
// checks), and whether the request had been sent when it failed.
type streamError struct {
	err  error
	sent bool
}

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }
