package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"tsnode/identity"
)

// RelayClient relays documents with their receipts to a verifier.
type RelayClient struct {
	Host     host.Host
	Self     identity.Entry
	Verifier identity.Entry
}

// Relay sends size bytes of doc and the receipt, and returns the
// verifier's verdict. An error means no verdict was obtained.
func (c *RelayClient) Relay(ctx context.Context, receipt *Receipt, doc io.Reader, size int64) (*Verdict, error) {
	key, err := newSessionKey()
	if err != nil {
		return nil, err
	}
	hdr := &relayHeader{SenderID: c.Self.ID, SessionKey: key, Receipt: receipt.Marshal(), DocumentSize: uint64(size)}
	sealed, err := Seal(c.Verifier.PublicKey, relayHeaderTag, hdr.encode())
	if err != nil {
		return nil, err
	}
	openCtx, cancel := context.WithTimeout(ctx, RelayIdleTimeout)
	defer cancel()
	s, err := c.Host.NewStream(openCtx, c.Verifier.PeerID, RelayProtocolID)
	if err != nil {
		return nil, fmt.Errorf("failed to open relay stream to verifier %s (%s): %w", c.Verifier.ID, c.Verifier.PeerID, err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()

	_ = s.SetWriteDeadline(time.Now().Add(RelayIdleTimeout))
	sendErr := WriteFrame(s, sealed)
	if sendErr == nil {
		sendErr = c.sendDocument(s, key, doc, size)
	}
	_ = s.CloseWrite()
	// The verifier may answer before reading everything (a bad chunk), so
	// a failed send is reported only if no verdict follows.
	_ = s.SetReadDeadline(time.Now().Add(RelayIdleTimeout))
	frame, err := ReadFrame(bufio.NewReader(s), MaxVerdictSize)
	if err != nil {
		s.Reset()
		if sendErr != nil {
			return nil, fmt.Errorf("failed to relay to verifier %s: %w", c.Verifier.ID, sendErr)
		}
		return nil, fmt.Errorf("no verdict from verifier %s: %w", c.Verifier.ID, err)
	}
	v, err := openVerdict(key, frame)
	if err != nil {
		return nil, fmt.Errorf("verifier %s: %w", c.Verifier.ID, err)
	}
	if v.Verifier != c.Verifier.ID {
		return nil, fmt.Errorf("%w: verdict signed as %q, we asked %q", ErrReplyMismatch, v.Verifier, c.Verifier.ID)
	}
	return v, nil
}

// writeDeadliner is the part of a stream sendDocument needs.
type writeDeadliner interface {
	io.Writer
	SetWriteDeadline(time.Time) error
}

func (c *RelayClient) sendDocument(w writeDeadliner, key []byte, doc io.Reader, size int64) error {
	aead, err := newGCM(key)
	if err != nil {
		return err
	}
	sealer := &chunkSealer{aead: aead}
	buf := make([]byte, ChunkSize)
	var sent int64
	for {
		n, err := io.ReadFull(doc, buf[:min(int64(ChunkSize), size-sent)])
		if err != nil {
			// io.EOF: not one byte of a non-empty read was left.
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("document shrank while being sent: %d of %d bytes", sent+int64(n), size)
			}
			return fmt.Errorf("failed to read document: %w", err)
		}
		sent += int64(n)
		final := sent == size
		_ = w.SetWriteDeadline(time.Now().Add(RelayIdleTimeout))
		if err := WriteFrame(w, sealer.seal(buf[:n], final)); err != nil {
			return err
		}
		if final {
			return nil
		}
	}
}
