package protocol

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/mod/sumdb/tlog"

	"tsnode/identity"
	"tsnode/internal/p2pstream"
)

// Log protocol /tsnode/log/1.0.0: ask a server for its latest signed tree
// head and, optionally, for the proof that the tree of size new extends
// the tree of size old (new 0: the latest head's size).
const (
	LogProtocolID      = "/tsnode/log/1.0.0"
	LogServiceName     = "tsnode.log"
	MaxLogRequestSize  = 64
	MaxLogResponseSize = 8 << 10
	LogStreamTimeout   = 30 * time.Second
)

const (
	logRequestTag  = "tsnode/log-request/v1"
	logResponseTag = "tsnode/log-response/v1"
)

// LogHandler serves the log protocol from a LogSigner.
func LogHandler(signer *LogSigner) network.StreamHandler {
	return func(s network.Stream) {
		release, err := p2pstream.Prepare(s, LogServiceName, MaxLogRequestSize+MaxLogResponseSize)
		if err != nil {
			s.Reset()
			return
		}
		defer release()
		_ = s.SetDeadline(time.Now().Add(LogStreamTimeout))
		frame, err := ReadFrame(bufio.NewReaderSize(s, 128), MaxLogRequestSize)
		if err != nil {
			s.Reset()
			return
		}
		f, err := DecodeRecord(frame, logRequestTag, 2)
		if err != nil {
			s.Reset()
			return
		}
		oldSize, err1 := parseU64("old size", f[0])
		newSize, err2 := parseU64("new size", f[1])
		if err1 != nil || err2 != nil {
			s.Reset()
			return
		}
		_ = WriteFrame(s, logResponse(signer, oldSize, newSize))
		s.Close()
	}
}

func logResponse(signer *LogSigner, oldSize, newSize uint64) []byte {
	refuse := func(status, msg string) []byte {
		return EncodeRecord(logResponseTag, []byte(status), []byte(msg), nil, nil)
	}
	head := signer.Head()
	if head == nil {
		return refuse(StatusBadRequest, "the log is empty")
	}
	if newSize == 0 {
		newSize = head.Head.Size
	}
	// Checked here, not only by ConsistencyProof: with old_size 0 no
	// proof is made, and the log may hold leaves no signed head covers.
	if newSize > head.Head.Size {
		return refuse(StatusBadRequest, fmt.Sprintf("new size %d is beyond the latest signed head (size %d)", newSize, head.Head.Size))
	}
	if oldSize > newSize {
		return refuse(StatusBadRequest, fmt.Sprintf("old size %d is larger than new size %d", oldSize, newSize))
	}
	var proof []byte
	if oldSize > 0 {
		p, err := signer.Log().ConsistencyProof(oldSize, newSize)
		if err != nil {
			return refuse(StatusBadRequest, err.Error())
		}
		for _, h := range p {
			proof = append(proof, h[:]...)
		}
	}
	return EncodeRecord(logResponseTag, []byte(StatusOK), head.Encoded, head.Signature, proof)
}

// LogClient asks a server about its log. Trust decides whose tree heads
// count; Server must be one of its authorities.
type LogClient struct {
	Host   host.Host
	Server identity.Entry
	Trust  *Trust
}

// Fetch returns the server's latest signed tree head (signature checked)
// and, when oldSize > 0, the consistency proof from oldSize to newSize
// (0: the returned head's size).
func (c *LogClient) Fetch(ctx context.Context, oldSize, newSize uint64) (*SignedTreeHead, tlog.TreeProof, error) {
	ctx, cancel := context.WithTimeout(ctx, LogStreamTimeout)
	defer cancel()
	s, err := c.Host.NewStream(ctx, c.Server.PeerID, LogProtocolID)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to open log stream to server %s: %w", c.Server.ID, err)
	}
	defer s.Close()
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(deadline)
	if err := WriteFrame(s, EncodeRecord(logRequestTag, u64(oldSize), u64(newSize))); err != nil {
		s.Reset()
		return nil, nil, err
	}
	_ = s.CloseWrite()
	frame, err := ReadFrame(bufio.NewReader(s), MaxLogResponseSize)
	if err != nil {
		s.Reset()
		return nil, nil, fmt.Errorf("no log answer from %s: %w", c.Server.ID, err)
	}
	f, err := DecodeRecord(frame, logResponseTag, 4)
	if err != nil {
		return nil, nil, err
	}
	if string(f[0]) != StatusOK {
		return nil, nil, fmt.Errorf("%w by %s: %s: %s", ErrRefused, c.Server.ID, truncate(f[0]), string(f[1]))
	}
	sth, err := c.checkHead(f[1], f[2])
	if err != nil {
		return nil, nil, err
	}
	if len(f[3])%tlog.HashSize != 0 {
		return nil, nil, fmt.Errorf("%w: consistency proof of %d bytes", ErrMalformed, len(f[3]))
	}
	var proof tlog.TreeProof
	for p := f[3]; len(p) > 0; p = p[tlog.HashSize:] {
		proof = append(proof, tlog.Hash(p[:tlog.HashSize]))
	}
	return sth, proof, nil
}

func (c *LogClient) checkHead(enc, sig []byte) (*SignedTreeHead, error) {
	sth, err := c.Trust.CheckTreeHead(enc, sig, nil)
	if err != nil {
		return nil, err
	}
	return sth, checkHeadOf(sth.Head, c.Server)
}

// ConsistencyFormat marks a consistency proof file.
const ConsistencyFormat = "tsnode-consistency-v1"

// Consistency is a self-contained proof that the log with the New head
// extends the log with the Old head: two signed heads and the RFC 6962
// consistency proof between them.
type Consistency struct {
	Format string           `json:"format"`
	Old    *ReceiptTreeHead `json:"old"`
	New    *ReceiptTreeHead `json:"new"`
	Proof  []string         `json:"proof"` // lowercase hex hashes
}

// NewConsistency builds a consistency proof file.
func NewConsistency(old, new *SignedTreeHead, proof tlog.TreeProof) *Consistency {
	c := &Consistency{Format: ConsistencyFormat, Old: newReceiptTreeHead(old), New: newReceiptTreeHead(new), Proof: []string{}}
	for _, h := range proof {
		c.Proof = append(c.Proof, fmt.Sprintf("%x", h[:]))
	}
	return c
}

// ParseConsistency decodes a consistency proof file, as strictly as
// ParseReceipt.
func ParseConsistency(b []byte) (*Consistency, error) {
	return parseStrict[Consistency](b, consistencyShape)
}

// ReadConsistencyFile reads and parses a consistency proof file.
func ReadConsistencyFile(path string) (*Consistency, error) {
	return readStrictFile(path, "consistency proof", ParseConsistency)
}

// Verify checks the file: both heads signed by one authority that trust
// holds, and the proof between them (PROTOCOL.md §8.4).
func (c *Consistency) Verify(trust *Trust) error {
	if c.Format != ConsistencyFormat || c.Old == nil || c.New == nil {
		return fmt.Errorf("%w: not a %s file", ErrMalformedReceipt, ConsistencyFormat)
	}
	old, err := c.Old.decode("old")
	if err != nil {
		return err
	}
	nw, err := c.New.decode("new")
	if err != nil {
		return err
	}
	proof, err := decodeHashList("proof", c.Proof)
	if err != nil {
		return err
	}
	return trust.CheckConsistency(old, nw, proof)
}
