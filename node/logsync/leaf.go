package logsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/protocol"
	multistream "github.com/multiformats/go-multistream"
	"golang.org/x/mod/sumdb/tlog"

	tsproto "github.com/tsnode/tsnode/protocol"
)

// answerLeaf answers a leaf request (§8.5): the leaf at serial and its
// inclusion proof in the latest signed head.
func (s *Service) answerLeaf(serial uint64) *tsproto.LogLeafResponse {
	refuse := func(format string, a ...any) *tsproto.LogLeafResponse {
		return &tsproto.LogLeafResponse{Status: tsproto.StatusBadRequest, Message: fmt.Sprintf(format, a...)}
	}
	src, ok := s.log.(LeafSource)
	head := s.log.Head()
	switch {
	case !ok:
		return refuse("this log serves no leaves")
	case head == nil:
		return refuse("%s", tsproto.LogEmptyMessage)
	case serial >= head.Head.Size:
		return refuse("serial %d is not under the latest signed head (size %d)", serial, head.Head.Size)
	}
	leaf, err := src.Leaf(serial)
	if err != nil {
		return refuse("%v", err)
	}
	if len(leaf) > tsproto.MaxLogLeafSize {
		return refuse("the leaf at serial %d is %d bytes, more than a response carries", serial, len(leaf))
	}
	proof, err := src.InclusionProof(serial, head.Head.Size)
	if err != nil {
		return refuse("%v", err)
	}
	return &tsproto.LogLeafResponse{Status: tsproto.StatusOK, Head: head.Encoded, Sig: head.Signature, Leaf: leaf, Proof: proof}
}

// ErrNoLeafProtocol: the server does not speak /tsnode/log/1.1.0 (it is
// older than the leaf request).
var ErrNoLeafProtocol = errors.New("the server does not serve " + IDv11 + " (leaves and their inclusion proofs)")

// FetchLeaf asks for the leaf at serial and its inclusion proof in the
// latest signed head. The head is checked (the trust rule, and that it is
// the server's); the proof is not: Trust.CheckTSAInclusion does that.
func (c *Client) FetchLeaf(ctx context.Context, serial uint64) (*tsproto.SignedTreeHead, []byte, tlog.RecordProof, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	s, err := c.Host.NewStream(ctx, c.Server.PeerID, IDv11)
	if err != nil {
		var nse multistream.ErrNotSupported[protocol.ID]
		if errors.As(err, &nse) {
			return nil, nil, nil, fmt.Errorf("%s: %w", c.Server.ID, ErrNoLeafProtocol)
		}
		return nil, nil, nil, fmt.Errorf("failed to open log stream to server %s: %w", c.Server.ID, err)
	}
	defer s.Close()
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(deadline)
	if err := tsproto.WriteFrame(s, tsproto.EncodeLogLeafRequest(serial)); err != nil {
		s.Reset()
		return nil, nil, nil, err
	}
	_ = s.CloseWrite()
	frame, err := tsproto.ReadFrame(bufio.NewReader(s), tsproto.MaxLogLeafResponseSize)
	if err != nil {
		s.Reset()
		return nil, nil, nil, fmt.Errorf("no log answer from %s: %w", c.Server.ID, err)
	}
	r, err := tsproto.ParseLogLeafResponse(frame)
	if err != nil {
		return nil, nil, nil, err
	}
	if r.Status != tsproto.StatusOK {
		return nil, nil, nil, tsproto.Refusal(string(c.Server.ID), []byte(r.Status), []byte(r.Message))
	}
	sth, err := c.Trust.CheckServerHead(r.Head, r.Sig, c.Server, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	return sth, r.Leaf, r.Proof, nil
}
