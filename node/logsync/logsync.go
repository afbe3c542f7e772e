// Package logsync is the log protocol, /tsnode/log/1.0.0 (docs/PROTOCOL.md
// §8): anyone the server admits asks for its latest signed tree head and
// for consistency proofs between tree sizes. The server's side is a
// Service; the auditor's a Client.
package logsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/p2pstream"
	"github.com/tsnode/tsnode/protocol"
)

const (
	ID          = protocol.LogProtocolID
	IDv11       = protocol.LogProtocolV11ID
	ServiceName = protocol.LogServiceName
	// Timeout bounds a whole exchange, on both sides.
	Timeout = protocol.LogStreamTimeout
)

// Source is the log a Service serves: the authority's latest signed head
// (nil while the log is empty) and consistency proofs between sizes.
type Source interface {
	Head() *protocol.SignedTreeHead
	ConsistencyProof(oldSize, newSize uint64) (tlog.TreeProof, error)
}

// LeafSource is a Source that also serves leaves and their inclusion
// proofs: a Service of one serves /tsnode/log/1.1.0 as well (§8.5).
type LeafSource interface {
	Source
	Leaf(index uint64) ([]byte, error)
	InclusionProof(index, size uint64) (tlog.RecordProof, error)
}

// Service serves the log protocol from a Source.
type Service struct {
	host host.Host
	log  Source
}

// New serves the log protocol on h from log.
func New(h host.Host, log Source) (*Service, error) {
	if log == nil {
		return nil, errors.New("logsync: no log to serve")
	}
	s := &Service{host: h, log: log}
	h.SetStreamHandler(ID, s.handle)
	if _, ok := log.(LeafSource); ok {
		h.SetStreamHandler(IDv11, s.handle)
	}
	return s, nil
}

// Close stops serving the protocol.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(ID)
	s.host.RemoveStreamHandler(IDv11)
	return nil
}

func (s *Service) handle(st network.Stream) {
	reserve := protocol.MaxLogRequestSize + protocol.MaxLogResponseSize
	if st.Protocol() == IDv11 {
		reserve = protocol.MaxLogRequestSize + protocol.MaxLogLeafResponseSize
	}
	release, err := p2pstream.Prepare(st, ServiceName, reserve)
	if err != nil {
		st.Reset()
		return
	}
	defer release()
	_ = st.SetDeadline(time.Now().Add(Timeout))
	frame, err := protocol.ReadFrame(bufio.NewReaderSize(st, 128), protocol.MaxLogRequestSize)
	if err != nil {
		st.Reset()
		return
	}
	if st.Protocol() == IDv11 {
		if serial, err := protocol.ParseLogLeafRequest(frame); err == nil {
			_ = protocol.WriteFrame(st, s.answerLeaf(serial).Encode())
			st.Close()
			return
		}
	}
	oldSize, newSize, err := protocol.ParseLogRequest(frame)
	if err != nil {
		st.Reset()
		return
	}
	_ = protocol.WriteFrame(st, s.answer(oldSize, newSize).Encode())
	st.Close()
}

func (s *Service) answer(oldSize, newSize uint64) *protocol.LogResponse {
	refuse := func(format string, a ...any) *protocol.LogResponse {
		return &protocol.LogResponse{Status: protocol.StatusBadRequest, Message: fmt.Sprintf(format, a...)}
	}
	head := s.log.Head()
	if head == nil {
		return refuse("%s", protocol.LogEmptyMessage)
	}
	if newSize == 0 {
		newSize = head.Head.Size
	}
	// Checked here, not only by ConsistencyProof: with old_size 0 no
	// proof is made, and the log may hold leaves no signed head covers.
	if newSize > head.Head.Size {
		return refuse("new size %d is beyond the latest signed head (size %d)", newSize, head.Head.Size)
	}
	if oldSize > newSize {
		return refuse("old size %d is larger than new size %d", oldSize, newSize)
	}
	r := &protocol.LogResponse{Status: protocol.StatusOK, Head: head.Encoded, Sig: head.Signature}
	if oldSize > 0 {
		p, err := s.log.ConsistencyProof(oldSize, newSize)
		if err != nil {
			return refuse("%v", err)
		}
		r.Proof = p
	}
	return r
}

// ErrEmptyLog: the server says its log is empty (size 0). Nothing signed
// backs the claim; a log that shrank to nothing would say the same.
var ErrEmptyLog = errors.New("the log is empty")

// Client asks a server about its log. Only tree heads that Trust accepts
// count; Server must be one of its authorities.
type Client struct {
	Host   host.Host
	Server identity.Entry
	Trust  *protocol.Trust
}

// NewClient asks server, over h, with the trust policy trust.
func NewClient(h host.Host, server identity.Entry, trust *protocol.Trust) *Client {
	return &Client{Host: h, Server: server, Trust: trust}
}

// Fetch returns the server's latest signed tree head (checked) and, when
// oldSize > 0, the consistency proof from oldSize to newSize (0: the
// returned head's size). The head is the latest whatever newSize is:
// Prove pairs a proof with the heads it is between.
func (c *Client) Fetch(ctx context.Context, oldSize, newSize uint64) (*protocol.SignedTreeHead, tlog.TreeProof, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	s, err := c.Host.NewStream(ctx, c.Server.PeerID, ID)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open log stream to server %s: %w", c.Server.ID, err)
	}
	defer s.Close()
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(deadline)
	if err := protocol.WriteFrame(s, protocol.EncodeLogRequest(oldSize, newSize)); err != nil {
		s.Reset()
		return nil, nil, err
	}
	_ = s.CloseWrite()
	frame, err := protocol.ReadFrame(bufio.NewReader(s), protocol.MaxLogResponseSize)
	if err != nil {
		s.Reset()
		return nil, nil, fmt.Errorf("no log answer from %s: %w", c.Server.ID, err)
	}
	r, err := protocol.ParseLogResponse(frame)
	if err != nil {
		return nil, nil, err
	}
	if r.Status != protocol.StatusOK {
		refusal := protocol.Refusal(string(c.Server.ID), []byte(r.Status), []byte(r.Message))
		if r.Status == protocol.StatusBadRequest && r.Message == protocol.LogEmptyMessage {
			// Still a refusal (protocol.ErrRefused), and known as empty.
			return nil, nil, fmt.Errorf("%w: server %s has signed no tree head yet (%w)", ErrEmptyLog, c.Server.ID, refusal)
		}
		return nil, nil, refusal
	}
	sth, err := c.Trust.CheckServerHead(r.Head, r.Sig, c.Server, nil)
	if err != nil {
		return nil, nil, err
	}
	return sth, r.Proof, nil
}

// Prove asks for the proof that the log of head nw extends the log of
// head old (nw nil: the server's latest head) and checks it with the one
// verification path (Trust.CheckConsistency). It returns the new head and
// the proof.
func (c *Client) Prove(ctx context.Context, old, nw *protocol.SignedTreeHead) (*protocol.SignedTreeHead, tlog.TreeProof, error) {
	var newSize uint64
	if nw != nil {
		newSize = nw.Head.Size
	}
	latest, proof, err := c.Fetch(ctx, old.Head.Size, newSize)
	if err != nil {
		return nil, nil, err
	}
	if nw == nil {
		nw = latest
	}
	if err := c.Trust.CheckConsistency(old, nw, proof); err != nil {
		return nil, nil, err
	}
	return nw, proof, nil
}
