package stamp

import (
	"github.com/tsnode/tsnode/protocol"

	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/drain"
	"github.com/tsnode/tsnode/internal/p2pstream"
)

// oneShotHandler serves one-shot stamps with a Stamper.
// While the service drains it refuses new requests with shutting-down.
func oneShotHandler(st *Stamper, d *drain.Tracker, m Metrics) network.StreamHandler {
	return func(s network.Stream) {
		release, err := p2pstream.Prepare(s, protocol.StampServiceName, protocol.MaxStampRequestSize+protocol.MaxStampResponseSize)
		if err != nil {
			log.Debugw("stamp stream refused", "peer", s.Conn().RemotePeer(), "err", err)
			s.Reset()
			return
		}
		defer release()
		entered := d.Enter()
		if entered {
			defer d.Leave()
		}
		_ = s.SetDeadline(time.Now().Add(protocol.StampStreamTimeout))
		remote := s.Conn().RemotePeer()

		req, err := protocol.ReadFrame(bufio.NewReaderSize(s, 1024), protocol.MaxStampRequestSize)
		if err != nil {
			log.Warnw("stamp: bad request frame; resetting stream", "peer", remote, "err", err)
			m.Refused(protocol.StatusBadRequest)
			s.Reset()
			return
		}
		read := time.Now()
		var reply []byte
		var stmt *protocol.Statement
		if entered {
			reply, stmt, err = st.Handle(remote, req)
		} else {
			err = &StampError{protocol.StatusShuttingDown, "the server is shutting down"}
		}
		var resp []byte
		var se *StampError
		switch {
		case err == nil:
			resp = protocol.EncodeStampResponse(protocol.StatusOK, reply)
			m.Stamped(FlowOneShot, time.Since(read))
			log.Debugw("stamped", "flow", FlowOneShot, "serial", stmt.Serial, "requester", stmt.RequesterID, "time", protocol.FormatTime(stmt.Time))
		case errors.As(err, &se):
			resp = protocol.EncodeStampResponse(se.Status, []byte(se.Message))
			m.Refused(se.Status)
			log.Warnw("stamp request refused", "peer", remote, "status", se.Status, "reason", se.Message)
		default:
			s.Reset()
			return
		}
		if err := protocol.WriteFrame(s, resp); err != nil {
			log.Debugw("stamp: writing response failed", "peer", remote, "err", err)
			s.Reset()
			return
		}
		s.Close()
	}
}

// OneShotClient asks a server for stamps as the requester self. Trust
// decides whose signatures count; Server must be one of its authorities.
type OneShotClient struct {
	Host   host.Host
	Key    *rsa.PrivateKey
	Self   identity.Entry
	Server identity.Entry
	Trust  *protocol.Trust
}

// Stamp gets documentHash stamped, checks the reply (same hash, same
// nonce, parties, server signature) and returns the receipt.
func (c *OneShotClient) Stamp(ctx context.Context, documentHash []byte) (*protocol.Receipt, error) {
	if err := c.Trust.CheckAuthority(c.Server.ID); err != nil {
		return nil, err
	}
	nonce := make([]byte, protocol.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	req := &protocol.StampRequest{RequesterID: c.Self.ID, DocumentHash: documentHash, Nonce: nonce}
	sealed, err := protocol.Seal(c.Server.PublicKey, protocol.StampRequestTag, req.Encode())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, protocol.StampStreamTimeout)
	defer cancel()
	s, err := c.Host.NewStream(ctx, c.Server.PeerID, protocol.StampProtocolID)
	if err != nil {
		return nil, &streamError{err: fmt.Errorf("failed to open stamp stream to server %s (%s): %w", c.Server.ID, c.Server.PeerID, err)}
	}
	defer s.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(deadline)
	}
	if err := protocol.WriteFrame(s, sealed); err != nil {
		s.Reset()
		return nil, &streamError{err: fmt.Errorf("failed to send stamp request to %s: %w", c.Server.ID, err), sent: true}
	}
	_ = s.CloseWrite()
	resp, err := protocol.ReadFrame(bufio.NewReaderSize(s, 2048), protocol.MaxStampResponseSize)
	if err != nil {
		s.Reset()
		return nil, &streamError{err: fmt.Errorf("failed to read stamp response from %s: %w", c.Server.ID, err), sent: true}
	}
	st, sig, err := protocol.OpenStampResponse(resp, c.Key, req, c.Trust, c.Server, c.Self)
	if err != nil {
		return nil, err
	}
	return protocol.NewReceipt(st, sig), nil
}
