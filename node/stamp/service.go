// Package stamp is the stamp protocol, as an authority serves it and a
// requester uses it: /tsnode/stamp/1.0.0, one sealed exchange and one
// signed statement per stamp (docs/PROTOCOL.md §6, the prototype's flow),
// and /tsnode/stamp/2.0.0, sessions in which every stamp is a leaf of the
// authority's Merkle log under a signed tree head (§7).
package stamp

import (
	"context"
	"crypto/rsa"
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
	// OneShotID is the protocol ID of one-shot stamps.
	OneShotID = protocol.StampProtocolID
	// SessionID is the protocol ID of stamp sessions.
	SessionID = protocol.SessionProtocolID
)

var log = logging.Logger("tsnode/stamp")

// Stamp flows, as Metrics.Stamped names them.
const (
	FlowSession = "session"
	FlowOneShot = "oneshot"
)

// Metrics is told what the service does (--metrics); its methods must be
// quick.
type Metrics interface {
	SessionOpened()
	// SessionClosed: an accepted session ended, as end says: EndClosed
	// (by the requester), EndAbandoned (reset, connection lost, network
	// error, idle), EndViolation (also counted as a bad-request refusal)
	// or EndDraining.
	SessionClosed(end string)
	// Stamped: a stamp of flow answered, latency after its request was read.
	Stamped(flow string, latency time.Duration)
	// Refused: a session, request or stamp refused, with the status sent
	// (protocol.StatusBadRequest, ...) as reason.
	Refused(reason string)
}

type noMetrics struct{}

func (noMetrics) SessionOpened()                {}
func (noMetrics) SessionClosed(string)          {}
func (noMetrics) Stamped(string, time.Duration) {}
func (noMetrics) Refused(string)                {}

// Option tunes a Service.
type Option func(*options)

type options struct{ metrics Metrics }

// WithMetrics tells m what the service does.
func WithMetrics(m Metrics) Option {
	return func(o *options) {
		if m != nil {
			o.metrics = m
		}
	}
}

// Service serves both versions of the stamp protocol for the authority
// self, whose private key is key: requesters must be in dir, and every
// stamp is logged by the authority.
type Service struct {
	host  host.Host
	drain *drain.Tracker
}

// New serves the stamp protocols on h.
func New(h host.Host, key *rsa.PrivateKey, self identity.Entry, dir identity.Peers, log *authority.Authority, opts ...Option) (*Service, error) {
	if log == nil {
		return nil, errors.New("stamp: no log")
	}
	o := options{metrics: noMetrics{}}
	for _, opt := range opts {
		opt(&o)
	}
	stamper, err := NewStamper(key, self, dir, log)
	if err != nil {
		return nil, err
	}
	d := drain.New()
	h.SetStreamHandler(OneShotID, oneShotHandler(stamper, d, o.metrics))
	sessions := &sessionHandler{Key: key, Self: self, Dir: dir, Log: log, Drain: d, Metrics: o.metrics}
	h.SetStreamHandler(SessionID, sessions.Handler())
	return &Service{host: h, drain: d}, nil
}

// Drain stops taking stamps and waits, until ctx ends, for those already
// submitted to be answered: new sessions and one-shot requests are
// refused with shutting-down; open sessions stop reading, answer what
// they read, send the shutdown notice (§7.7) and close.
func (s *Service) Drain(ctx context.Context) error {
	if err := s.drain.Drain(ctx); err != nil {
		return fmt.Errorf("stamp: draining: %w", err)
	}
	return nil
}

// Close stops serving both protocols; streams in progress go on.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(OneShotID)
	s.host.RemoveStreamHandler(SessionID)
	return nil
}
