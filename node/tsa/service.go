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
	"sync/atomic"
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

// OutcomeGranted is the outcome of a request answered with a token;
// a refusal's is its failure info's name (protocol.TSAFailure.String).
const OutcomeGranted = "granted"

// Options configure a Service.
type Options struct {
	// Policy is the dotted OID of the tokens' policy (default
	// protocol.DefaultTSAPolicy); a request naming another is refused.
	Policy string
	// Accuracy is the tokens' accuracy: the authority's clock tolerance.
	Accuracy time.Duration
	// Dir names the libp2p requesters (their id goes into the leaf).
	Dir identity.Peers
	// Renew, if set, renews the certificates while the service runs
	// (renew.go): the keys given to New must be what Renew.Ensure made.
	Renew *Config
	// CheckInterval is the longest wait between two checks of whether
	// the signing certificate is due (0: DefaultCheckInterval).
	CheckInterval time.Duration
	// Metrics, if set, counts the requests and follows the certificate.
	Metrics Metrics
}

// Metrics are the service's hooks into the node's metrics
// (internal/metrics.TSA implements them).
type Metrics interface {
	// Answered records one TimeStampResp: how it was asked
	// (protocol.TSAViaHTTP or TSAViaLibp2p), its outcome (OutcomeGranted,
	// or the failure info's name) and the time from the request read to
	// the answer ready.
	Answered(via, outcome string, d time.Duration)
	// SigningCertificate records the end of the signing certificate that
	// new tokens get.
	SigningCertificate(notAfter time.Time)
	// Renewal records a renewal of the certificates while running: done,
	// or failed (the old ones stay in use and it is tried again).
	Renewal(ok bool)
}

type noMetrics struct{}

func (noMetrics) Answered(string, string, time.Duration) {}
func (noMetrics) SigningCertificate(time.Time)           {}
func (noMetrics) Renewal(bool)                           {}

// Service answers RFC 3161 requests for one authority.
type Service struct {
	host    host.Host // nil: HTTP only
	log     *authority.Authority
	signing atomic.Pointer[signing]
	policy  []byte
	dir     identity.Peers
	drain   *drain.Tracker
	https   []*httpServer
	metrics Metrics
	renewer *renewer // nil: no renewal while running
}

// signing is what new tokens are signed with and /certchain serves; a
// renewal replaces it whole, so that a token and the chain served never
// mix two certificates.
type signing struct {
	signer *protocol.TSASigner
	chain  []byte // PEM, signing certificate then root
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
	s := &Service{host: h, log: a, policy: policy, dir: o.Dir, drain: drain.New(), metrics: o.Metrics}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	s.use(keys, o.Policy, o.Accuracy)
	if o.Renew != nil {
		s.renewer = startRenewer(s, o.Renew, o.CheckInterval)
	}
	if h != nil {
		h.SetStreamHandler(ProtocolID, s.streamHandler)
	}
	return s, nil
}

// use signs new tokens with keys from now on.
func (s *Service) use(keys *Keys, policy string, accuracy time.Duration) {
	s.signing.Store(&signing{
		signer: &protocol.TSASigner{Cert: keys.Cert, Key: keys.Signer, Chain: []*x509.Certificate{keys.Root}, Policy: policy, Accuracy: accuracy},
		chain:  keys.ChainPEM(),
	})
	s.metrics.SigningCertificate(keys.Cert.NotAfter)
}

// Handle answers one DER request: always a DER TimeStampResp, granted
// only once the token's leaf is durable in the log. via is
// protocol.TSAViaHTTP or TSAViaLibp2p (then requester is the peer).
func (s *Service) Handle(ctx context.Context, der []byte, via string, requester identity.Entry) []byte {
	start := time.Now()
	resp, outcome := s.handle(ctx, der, via, requester)
	s.metrics.Answered(via, outcome, time.Since(start))
	return resp
}

// handle is Handle, also naming the outcome for the metrics.
func (s *Service) handle(ctx context.Context, der []byte, via string, requester identity.Entry) ([]byte, string) {
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
		return protocol.EncodeTSARejection(te), te.Failure.String()
	}
	// One signer from the leaf to the token, whatever a renewal does
	// meanwhile.
	signer := s.signing.Load().signer
	leaf := &protocol.TSALeaf{Hash: req.Hash, Imprint: req.Imprint, Policy: signer.Policy, Nonce: req.Nonce, Via: via}
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
	token, err := signer.Token(st.RFC3161, req.CertReq)
	if err != nil {
		// The leaf is logged, the token never issued: the log says so.
		log.Errorw("rfc3161 token not signed", "serial", st.RFC3161.Serial, "err", err)
		return refuse(protocol.TSASystemFailure, fmt.Sprintf("token %d could not be signed", st.RFC3161.Serial))
	}
	log.Debugw("rfc3161 token", "serial", st.RFC3161.Serial, "via", via, "time", protocol.FormatTime(st.RFC3161.Time))
	return protocol.EncodeTSAGranted(token), OutcomeGranted
}

func refuse(f protocol.TSAFailure, reason string) ([]byte, string) {
	return protocol.EncodeTSARejection(&protocol.TSAError{Failure: f, Reason: reason}), f.String()
}

// Drain refuses new requests (systemFailure) and waits, until ctx ends,
// for those in progress to be answered.
func (s *Service) Drain(ctx context.Context) error {
	if err := s.drain.Drain(ctx); err != nil {
		return fmt.Errorf("tsa: draining: %w", err)
	}
	return nil
}

// Close stops serving the libp2p protocol and HTTP, and renewing.
func (s *Service) Close() error {
	s.renewer.stop()
	if s.host != nil {
		s.host.RemoveStreamHandler(ProtocolID)
	}
	var errs []error
	for _, h := range s.https {
		errs = append(errs, h.close())
	}
	return errors.Join(errs...)
}
