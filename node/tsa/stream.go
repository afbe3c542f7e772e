package tsa

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/p2pstream"
	"github.com/tsnode/tsnode/protocol"
)

// streamHandler answers one framed TimeStampReq with one framed
// TimeStampResp. A peer not in the directory, or a frame that is not one,
// gets the stream reset.
func (s *Service) streamHandler(st network.Stream) {
	release, err := p2pstream.Prepare(st, protocol.RFC3161ServiceName, protocol.MaxTSARequestSize+protocol.MaxTSAResponseSize)
	if err != nil {
		log.Debugw("rfc3161 stream refused", "peer", st.Conn().RemotePeer(), "err", err)
		st.Reset()
		return
	}
	defer release()
	_ = st.SetDeadline(time.Now().Add(StreamTimeout))
	remote := st.Conn().RemotePeer()
	var requester identity.Entry
	if s.dir != nil {
		if requester, err = s.dir.ByPeer(remote); err != nil {
			log.Debugw("rfc3161 stream from a peer not in the directory", "peer", remote)
			st.Reset()
			return
		}
	}
	req, err := protocol.ReadFrame(bufio.NewReaderSize(st, 1024), protocol.MaxTSARequestSize)
	if err != nil {
		log.Debugw("rfc3161: bad request frame; resetting stream", "peer", remote, "err", err)
		st.Reset()
		return
	}
	resp := s.Handle(context.Background(), req, protocol.TSAViaLibp2p, requester)
	if err := protocol.WriteFrame(st, resp); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// Request sends the DER TimeStampReq der to the server p over h and
// returns its DER TimeStampResp (not checked).
func Request(ctx context.Context, h host.Host, p peer.ID, der []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	st, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("failed to open an RFC 3161 stream to %s: %w", p, err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := protocol.WriteFrame(st, der); err != nil {
		st.Reset()
		return nil, fmt.Errorf("failed to send the RFC 3161 request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	resp, err := protocol.ReadFrame(bufio.NewReaderSize(st, 4096), protocol.MaxTSAResponseSize)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("failed to read the RFC 3161 response from %s: %w", p, err)
	}
	return resp, nil
}
