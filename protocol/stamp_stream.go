package protocol

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"tsnode/identity"
	"tsnode/internal/p2pstream"
)

var Log = logging.Logger("tsnode/protocol")

// StampHandler serves the stamp protocol with a Stamper.
func StampHandler(st *Stamper) network.StreamHandler {
	return func(s network.Stream) {
		release, err := p2pstream.Prepare(s, StampServiceName, MaxStampRequestSize+MaxStampResponseSize)
		if err != nil {
			Log.Debugw("stamp stream refused", "peer", s.Conn().RemotePeer(), "err", err)
			s.Reset()
			return
		}
		defer release()
		_ = s.SetDeadline(time.Now().Add(StampStreamTimeout))
		remote := s.Conn().RemotePeer()

		req, err := ReadFrame(bufio.NewReaderSize(s, 1024), MaxStampRequestSize)
		if err != nil {
			Log.Warnw("stamp: bad request frame; resetting stream", "peer", remote, "err", err)
			s.Reset()
			return
		}
		reply, stmt, err := st.Handle(remote, req)
		var resp []byte
		var se *StampError
		switch {
		case err == nil:
			resp = encodeStampResponse(StatusOK, reply)
			Log.Infow("stamped", "serial", stmt.Serial, "requester", stmt.RequesterID, "time", FormatTime(stmt.Time))
		case errors.As(err, &se):
			resp = encodeStampResponse(se.Status, []byte(se.Message))
			Log.Warnw("stamp request refused", "peer", remote, "status", se.Status, "reason", se.Message)
		default:
			s.Reset()
			return
		}
		if err := WriteFrame(s, resp); err != nil {
			Log.Debugw("stamp: writing response failed", "peer", remote, "err", err)
			s.Reset()
			return
		}
		s.Close()
	}
}

// StampClient asks a server for stamps as the requester self. Trust
// decides whose signatures count; Server must be one of its authorities.
type StampClient struct {
	Host   host.Host
	Key    *rsa.PrivateKey
	Self   identity.Entry
	Server identity.Entry
	Trust  *Trust
}

// Stamp gets documentHash stamped, checks the reply (same hash, same
// nonce, parties, server signature) and returns the receipt.
func (c *StampClient) Stamp(ctx context.Context, documentHash []byte) (*Receipt, error) {
	if err := c.Trust.CheckAuthority(c.Server.ID); err != nil {
		return nil, err
	}
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	req := &StampRequest{RequesterID: c.Self.ID, DocumentHash: documentHash, Nonce: nonce}
	sealed, err := Seal(c.Server.PublicKey, stampRequestTag, req.encode())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, StampStreamTimeout)
	defer cancel()
	s, err := c.Host.NewStream(ctx, c.Server.PeerID, StampProtocolID)
	if err != nil {
		return nil, fmt.Errorf("failed to open stamp stream to server %s (%s): %w", c.Server.ID, c.Server.PeerID, err)
	}
	defer s.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(deadline)
	}
	if err := WriteFrame(s, sealed); err != nil {
		s.Reset()
		return nil, fmt.Errorf("failed to send stamp request to %s: %w", c.Server.ID, err)
	}
	_ = s.CloseWrite()
	resp, err := ReadFrame(bufio.NewReaderSize(s, 2048), MaxStampResponseSize)
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("failed to read stamp response from %s: %w", c.Server.ID, err)
	}
	st, sig, err := openStampResponse(resp, c.Key, req, c.Trust, c.Server, c.Self)
	if err != nil {
		return nil, err
	}
	return NewReceipt(st, sig), nil
}
