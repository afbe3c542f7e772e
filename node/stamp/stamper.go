package stamp

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Stamper is the one-shot flow's core, free of any network: it checks a
// request against the authenticated peer that sent it, has the authority
// log it (serial and time come from the log), and signs the statement.
type Stamper struct {
	key  *rsa.PrivateKey
	self identity.Entry
	dir  identity.Peers
	log  *authority.Authority
}

// NewStamper makes the Stamper of the authority self, whose private key
// is key, for the requesters of dir, logging every stamp in log: serials
// are never reused, times never go backwards across restarts, and
// one-shot stamps are auditable too.
func NewStamper(key *rsa.PrivateKey, self identity.Entry, dir identity.Peers, log *authority.Authority) (*Stamper, error) {
	if log == nil {
		return nil, errors.New("stamp: a stamper needs the authority's log")
	}
	return &Stamper{key: key, self: self, dir: dir, log: log}, nil
}

// StampError is a refusal with a status code sent back to the requester.
type StampError struct {
	Status  string
	Message string
}

func (e *StampError) Error() string { return e.Status + ": " + e.Message }

// Handle answers one sealed request from the authenticated peer remote. It
// returns the sealed reply, or a *StampError to send back.
func (s *Stamper) Handle(remote peer.ID, sealed []byte) ([]byte, *protocol.Statement, error) {
	plain, err := protocol.Open(s.key, protocol.StampRequestTag, sealed)
	if err != nil {
		return nil, nil, &StampError{protocol.StatusBadRequest, err.Error()}
	}
	req, err := protocol.ParseStampRequest(plain)
	if err != nil {
		return nil, nil, &StampError{protocol.StatusBadRequest, err.Error()}
	}
	// The id inside the message is only a claim: it must name the key the
	// connection was authenticated with. (The prototype trusted it and
	// built a file path from it.)
	claimed, err := s.dir.Lookup(req.RequesterID)
	if err != nil {
		return nil, nil, &StampError{protocol.StatusUnknownID, err.Error()}
	}
	if claimed.PeerID != remote {
		return nil, nil, &StampError{protocol.StatusPeerMismatch, fmt.Sprintf("request claims id %q (peer %s) but was sent by peer %s", req.RequesterID, claimed.PeerID, remote)}
	}
	st, err := s.logged(claimed, req)
	if err != nil {
		status, msg := refusalOf(err)
		return nil, nil, &StampError{status, msg}
	}
	reply, err := s.seal(claimed, st)
	if err != nil {
		return nil, nil, &StampError{protocol.StatusInternal, err.Error()}
	}
	return reply, st, nil
}

// logged appends the stamp to the log and signs it once its leaf is
// durable: a v1 reply carries the statement's own signature, so it does
// not wait for a tree head.
func (s *Stamper) logged(requester identity.Entry, req *protocol.StampRequest) (*protocol.Statement, error) {
	st, err := s.log.AddDurable(context.Background(), authority.Entry{Requester: requester, Hash: req.DocumentHash, Nonce: req.Nonce})()
	if err != nil {
		return nil, err
	}
	return st.Statement, nil
}

// seal signs st and seals it to the requester.
func (s *Stamper) seal(claimed identity.Entry, st *protocol.Statement) ([]byte, error) {
	enc := st.Encode()
	sig, err := protocol.Sign(s.key, enc)
	if err != nil {
		return nil, errors.New("signing failed")
	}
	reply, err := protocol.Seal(claimed.PublicKey, protocol.StampReplyTag, protocol.EncodeRecord(protocol.StampReplyTag, enc, sig))
	if err != nil {
		return nil, errors.New("sealing the reply failed")
	}
	return reply, nil
}

// The messages of internal-error (PROTOCOL.md §7.6): whether the stamp
// is in the log tells the requester, and the operator it asks, whether a
// serial was spent on it.
const (
	msgNotLogged  = "the server could not log the stamp"
	msgNotGuarded = "the stamp is logged, but the server could not save its tree head (the guard, §5.5), so it is not answered"
	msgNotSigned  = "the stamp is logged, but the server could not sign its tree head, so it is not answered"
)

// refusalOf is the status and message a requester gets for a stamp the
// authority did not answer.
func refusalOf(err error) (status, message string) {
	switch {
	case errors.Is(err, authority.ErrClockBehind):
		return protocol.StatusClockBehind, "the server's clock is behind the last time it issued; it stamps again once its clock catches up"
	case errors.Is(err, authority.ErrClosed):
		return protocol.StatusShuttingDown, "the server is shutting down"
	case errors.Is(err, authority.ErrNotGuarded):
		return protocol.StatusInternal, msgNotGuarded
	case errors.Is(err, authority.ErrNotSigned):
		return protocol.StatusInternal, msgNotSigned
	}
	return protocol.StatusInternal, msgNotLogged
}
