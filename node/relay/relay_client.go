package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/tsnode/tsnode/identity"
)

// Client relays documents with their receipts to a verifier, as the
// requester Self.
type Client struct {
	Host     host.Host
	Self     identity.Entry
	Verifier identity.Entry
}

// NewClient relays from h as self to verifier.
func NewClient(h host.Host, self, verifier identity.Entry) *Client {
	return &Client{Host: h, Self: self, Verifier: verifier}
}

// Relay sends size bytes of doc and the receipt, and returns the
// verifier's verdict. An error means no verdict was obtained.
func (c *Client) Relay(ctx context.Context, receipt *protocol.Receipt, doc io.Reader, size int64) (*protocol.Verdict, error) {
	key, err := protocol.NewSessionKey()
	if err != nil {
		return nil, err
	}
	hdr := &protocol.RelayHeader{SenderID: c.Self.ID, SessionKey: key, Receipt: receipt.Marshal(), DocumentSize: uint64(size)}
	sealed, err := protocol.Seal(c.Verifier.PublicKey, protocol.RelayHeaderTag, hdr.Encode())
	if err != nil {
		return nil, err
	}
	openCtx, cancel := context.WithTimeout(ctx, protocol.RelayIdleTimeout)
	defer cancel()
	s, err := c.Host.NewStream(openCtx, c.Verifier.PeerID, protocol.RelayProtocolID)
	if err != nil {
		return nil, &streamError{fmt.Errorf("failed to open relay stream to verifier %s (%s): %w", c.Verifier.ID, c.Verifier.PeerID, err)}
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()

	_ = s.SetWriteDeadline(time.Now().Add(protocol.RelayIdleTimeout))
	sendErr := protocol.WriteFrame(s, sealed)
	if sendErr == nil {
		sendErr = c.sendDocument(s, key, doc, size)
	}
	_ = s.CloseWrite()
	// The verifier may answer before reading everything (a bad chunk), so
	// a failed send is reported only if no verdict follows.
	_ = s.SetReadDeadline(time.Now().Add(protocol.RelayIdleTimeout))
	frame, err := protocol.ReadFrame(bufio.NewReader(s), protocol.MaxVerdictSize)
	if err != nil {
		s.Reset()
		var de *documentError
		if errors.As(sendErr, &de) {
			return nil, fmt.Errorf("failed to relay to verifier %s: %w", c.Verifier.ID, sendErr)
		}
		if sendErr != nil {
			return nil, &streamError{fmt.Errorf("failed to relay to verifier %s: %w", c.Verifier.ID, sendErr)}
		}
		return nil, &streamError{fmt.Errorf("no verdict from verifier %s: %w", c.Verifier.ID, err)}
	}
	v, err := protocol.OpenVerdict(key, frame)
	if err != nil {
		return nil, fmt.Errorf("verifier %s: %w", c.Verifier.ID, err)
	}
	if v.Verifier != c.Verifier.ID {
		return nil, fmt.Errorf("%w: verdict signed as %q, we asked %q", protocol.ErrReplyMismatch, v.Verifier, c.Verifier.ID)
	}
	return v, nil
}

// writeDeadliner is the part of a stream sendDocument needs.
type writeDeadliner interface {
	io.Writer
	SetWriteDeadline(time.Time) error
}

func (c *Client) sendDocument(w writeDeadliner, key []byte, doc io.Reader, size int64) error {
	aead, err := protocol.NewGCM(key)
	if err != nil {
		return err
	}
	sealer := &protocol.ChunkSealer{Aead: aead}
	buf := make([]byte, protocol.ChunkSize)
	var sent int64
	for {
		n, err := io.ReadFull(doc, buf[:min(int64(protocol.ChunkSize), size-sent)])
		if err != nil {
			// io.EOF: not one byte of a non-empty read was left.
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return &documentError{fmt.Errorf("document shrank while being sent: %d of %d bytes", sent+int64(n), size)}
			}
			return &documentError{fmt.Errorf("failed to read document: %w", err)}
		}
		sent += int64(n)
		final := sent == size
		_ = w.SetWriteDeadline(time.Now().Add(protocol.RelayIdleTimeout))
		if err := protocol.WriteFrame(w, sealer.Seal(buf[:n], final)); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}

// Retryable reports whether a relay failed in its stream (opening it,
// sending, or waiting for the verdict) rather than in the document or the
// verdict: relaying again may succeed, and is harmless, since a verifier
// keeps one folder per stamp.
func Retryable(err error) bool {
	var se *streamError
	return errors.As(err, &se)
}

type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// documentError is a failure to read the document being sent.
type documentError struct{ err error }

func (e *documentError) Error() string { return e.err.Error() }
func (e *documentError) Unwrap() error { return e.err }
