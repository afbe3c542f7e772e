// Package tsa is tsnode's RFC 3161 time-stamp authority (PROTOCOL.md
// §14): a DER TimeStampReq in, a TimeStampResp out, over HTTP (--http)
// and the libp2p stream protocol /tsnode/rfc3161/1.0.0. Every token
// granted is first a durable leaf of the authority's log, whose serial is
// the token's serialNumber; a request refused is not logged.
package tsa

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/drain"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

const (
	// ProtocolID is the libp2p protocol: one frame each way.
	ProtocolID = protocol.RFC3161ProtocolID
	// StreamTimeout bounds one exchange on a stream.
	StreamTimeout = 30 * time.Second
	// StampTimeout bounds the wait for a token's leaf to be durable.
	StampTimeout = 10 * time.Second
)

var log = logging.Logger("tsnode/tsa")

// Options configure a Service.
type Options struct {
	// Policy is the dotted OID of the tokens' policy (default
	// protocol.DefaultTSAPolicy); a request naming another is refused.
	Policy string
	// Accuracy is the tokens' accuracy: the authority's clock tolerance.
	Accuracy time.Duration
	// Dir names the libp2p requesters (their id goes into the leaf).
	Dir identity.Peers
}

// Service answers RFC 3161 requests for one authority.
type Service struct {
	host   host.Host // nil: HTTP only
	log    *authority.Authority
	signer *protocol.TSASigner
	policy []byte
	chain  []byte // PEM, signing certificate then root
	dir    identity.Peers
	drain  *drain.Tracker
	https  []*httpServer
}

// New makes the service of the authority a with keys; if h is not nil it
// serves ProtocolID on h. HTTP is served with ServeHTTP.
func New(h host.Host, a *authority.Authority, keys *Keys, o Options) (*Service, error) {
	if a == nil || keys == nil {
		return nil, errors.New("tsa: no authority or no keys")
	}
	if o.Policy == "" {
		o.Policy = protocol.DefaultTSAPolicy
	}
	policy, err := protocol.TSAPolicyDER(o.Policy)
	if err != nil {
		return nil, err
	}
	s := &Service{
		host: h, log: a, policy: policy, chain: keys.ChainPEM(), dir: o.Dir, drain: drain.New(),
		signer: &protocol.TSASigner{Cert: keys.Cert, Key: keys.Signer, Chain: []*x509.Certificate{keys.Root}, Policy: o.Policy, Accuracy: o.Accuracy},
	}
	if h != nil {
		h.SetStreamHandler(ProtocolID, s.streamHandler)
	}
	return s, nil
}

// Handle answers one DER request: always a DER TimeStampResp, granted
// only once the token's leaf is durable in the log. via is
// protocol.TSAViaHTTP or TSAViaLibp2p (then requester is the peer).
func (s *Service) Handle(ctx context.Context, der []byte, via string, requester identity.Entry) []byte {
	if !s.drain.Enter() {
		return refuse(protocol.TSASystemFailure, "the authority is shutting down")
	}
	defer s.drain.Leave()
	req, err := protocol.ParseTSARequest(der, s.policy)
	if err != nil {
		var te *protocol.TSAError
		if !errors.As(err, &te) {
			te = &protocol.TSAError{Failure: protocol.TSABadDataFormat, Reason: err.Error()}
		}
		log.Debugw("rfc3161 request refused", "via", via, "failure", te.Failure.String(), "reason", te.Reason)
		return protocol.EncodeTSARejection(te)
	}
	leaf := &protocol.TSALeaf{Hash: req.Hash, Imprint: req.Imprint, Policy: s.signer.Policy, Nonce: req.Nonce, Via: via}
	if via == protocol.TSAViaLibp2p {
		leaf.RequesterID, leaf.RequesterPeer = requester.ID, requester.PeerID
	}
	ctx, cancel := context.WithTimeout(ctx, StampTimeout)
	defer cancel()
	st, err := s.log.AddDurable(ctx, authority.Entry{RFC3161: leaf})()
	switch {
	case errors.Is(err, authority.ErrClockBehind):
		return refuse(protocol.TSATimeNotAvailable, "the authority's clock is behind the last time it issued")
	case errors.Is(err, authority.ErrClosed):
		return refuse(protocol.TSASystemFailure, "the authority is shutting down")
	case err != nil:
		log.Warnw("rfc3161 token not logged", "via", via, "err", err)
		return refuse(protocol.TSASystemFailure, "the token could not be logged")
	}
	token, err := s.signer.Token(st.RFC3161, req.CertReq)
	if err != nil {
		// The leaf is logged, the token never issued: the log says so.
		log.Errorw("rfc3161 token not signed", "serial", st.RFC3161.Serial, "err", err)
		return refuse(protocol.TSASystemFailure, fmt.Sprintf("token %d could not be signed", st.RFC3161.Serial))
	}
	log.Debugw("rfc3161 token", "serial", st.RFC3161.Serial, "via", via, "time", protocol.FormatTime(st.RFC3161.Time))
	return protocol.EncodeTSAGranted(token)
}

func refuse(f protocol.TSAFailure, reason string) []byte {
	return protocol.EncodeTSARejection(&protocol.TSAError{Failure: f, Reason: reason})
}

// Drain refuses new requests (systemFailure) and waits, until ctx ends,
// for those in progress to be answered.
func (s *Service) Drain(ctx context.Context) error {
	if err := s.drain.Drain(ctx); err != nil {
		return fmt.Errorf("tsa: draining: %w", err)
	}
	return nil
}

// Close stops serving the libp2p protocol and HTTP.
func (s *Service) Close() error {
	if s.host != nil {
		s.host.RemoveStreamHandler(ProtocolID)
	}
	var errs []error
	for _, h := range s.https {
		errs = append(errs, h.close())
	}
	return errors.Join(errs...)
}
