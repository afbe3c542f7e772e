// Package witness is tsnode's gossip of tree heads (PROTOCOL.md §13):
// GossipSub topics per authority, on which the authority publishes its
// signed heads (Publisher), witnesses publish their cosignatures
// (Witness), anyone who can prove an equivocation publishes the evidence,
// and a requester collects cosignatures (Collector).
package witness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

const (
	// DefaultCheckpointInterval is how often an authority publishes its
	// latest head when the log grew.
	DefaultCheckpointInterval = time.Second
	// Heartbeat is the longest an authority goes without publishing a
	// head: when the log did not grow, it signs a fresh head of the same
	// tree.
	Heartbeat = time.Minute
	// DefaultClockTolerance is how far from a witness's clock a head may
	// be dated, and a cosignature from its head.
	DefaultClockTolerance = 5 * time.Second
	// invalidWeight scores down a peer per message that fails validation.
	invalidWeight = -100
)

var log = logging.Logger("tsnode/witness")

// Metrics is told what the gossip and the witness do (--metrics).
type Metrics interface {
	// Rejected: a message dropped by the topic validator, and why
	// ("size", "stranger", "malformed", "signature", "topic").
	Rejected(reason string)
	// Cosigned: a head of authority cosigned.
	Cosigned(authority identity.ID)
	// Equivocation: evidence against authority held.
	Equivocation(authority identity.ID)
}

type noMetrics struct{}

func (noMetrics) Rejected(string)          {}
func (noMetrics) Cosigned(identity.ID)     {}
func (noMetrics) Equivocation(identity.ID) {}

// Gossip is one GossipSub router on a host and its validated topics, one
// per authority that trust holds.
type Gossip struct {
	ps      *pubsub.PubSub
	dir     identity.Peers
	trust   *protocol.Trust
	cache   *protocol.HeadCache
	metrics Metrics
	cancel  context.CancelFunc

	mu     sync.Mutex
	topics map[string]*pubsub.Topic // by name
}

// GossipOption configures a Gossip.
type GossipOption func(*Gossip)

// WithMetrics reports to m.
func WithMetrics(m Metrics) GossipOption {
	return func(g *Gossip) {
		if m != nil {
			g.metrics = m
		}
	}
}

// NewGossip starts GossipSub on h. Messages are accepted only from peers
// of dir, and only if what they carry verifies under trust. Pubsub's own
// message signatures are off: every message carries the signatures that
// make it checkable (an RSA-4096 signature per message would cost more
// than the message is worth), and its id is the SHA-256 of its data.
func NewGossip(h host.Host, dir identity.Peers, trust *protocol.Trust, opts ...GossipOption) (*Gossip, error) {
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gossip{dir: dir, trust: trust, cache: protocol.NewHeadCache(1024), metrics: noMetrics{}, cancel: cancel, topics: map[string]*pubsub.Topic{}}
	for _, o := range opts {
		o(g)
	}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(func(m *pb.Message) string {
			d := sha256.Sum256(m.Data)
			return string(d[:])
		}),
		pubsub.WithMaxMessageSize(protocol.MaxGossipMessageSize+1024), // room for the RPC framing
		pubsub.WithPeerScore(&pubsub.PeerScoreParams{
			SkipAtomicValidation: true,
			AppSpecificScore:     func(peer.ID) float64 { return 0 },
			// Every peer of a test swarm, or of a LAN, shares an address:
			// no colocation penalty.
			DecayInterval: time.Second,
			DecayToZero:   0.01,
			RetainScore:   10 * time.Minute,
			Topics:        map[string]*pubsub.TopicScoreParams{},
		}, &pubsub.PeerScoreThresholds{
			SkipAtomicValidation: true,
			GossipThreshold:      -100,
			PublishThreshold:     -200,
			GraylistThreshold:    -300,
		}),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.ps = ps
	return g, nil
}

// Close stops the router.
func (g *Gossip) Close() error {
	g.mu.Lock()
	for name, t := range g.topics {
		_ = g.ps.UnregisterTopicValidator(name)
		_ = t.Close()
	}
	g.topics = map[string]*pubsub.Topic{}
	g.mu.Unlock()
	g.cancel()
	return nil
}

// topic joins a topic of authority (cosignatures: its cosignatures',
// else its heads'), once, with its validator.
func (g *Gossip) topic(authority identity.ID, cosignatures bool) (*pubsub.Topic, error) {
	if err := g.trust.CheckAuthority(authority); err != nil {
		return nil, err
	}
	name := protocol.Topic(authority)
	if cosignatures {
		name = protocol.CosignaturesTopic(authority)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := g.topics[name]; t != nil {
		return t, nil
	}
	if err := g.ps.RegisterTopicValidator(name, g.validator(authority, cosignatures)); err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	t, err := g.ps.Join(name)
	if err != nil {
		return nil, fmt.Errorf("gossip: joining %s: %w", name, err)
	}
	err = t.SetScoreParams(&pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshQuantum:              time.Second, // unweighted, but divided by
		TimeInMeshCap:                  1,
		InvalidMessageDeliveriesWeight: invalidWeight,
		InvalidMessageDeliveriesDecay:  0.5,
	})
	if err != nil {
		return nil, fmt.Errorf("gossip: scoring %s: %w", name, err)
	}
	g.topics[name] = t
	return t, nil
}

// Subscribe follows the heads of authority and the evidence against it.
func (g *Gossip) Subscribe(authority identity.ID) (*pubsub.Subscription, error) {
	t, err := g.topic(authority, false)
	if err != nil {
		return nil, err
	}
	return t.Subscribe()
}

// SubscribeCosignatures follows the witnesses' cosignatures of the heads
// of authority.
func (g *Gossip) SubscribeCosignatures(authority identity.ID) (*pubsub.Subscription, error) {
	t, err := g.topic(authority, true)
	if err != nil {
		return nil, err
	}
	return t.Subscribe()
}

// Publish sends data (a message of protocol's gossip encodings) on the
// topic of authority it belongs to: cosigned heads on its cosignatures'
// topic, heads and evidence on its heads'.
func (g *Gossip) Publish(ctx context.Context, authority identity.ID, data []byte) error {
	t, err := g.topic(authority, protocol.IsCosigned(data))
	if err != nil {
		return err
	}
	return t.Publish(ctx, data)
}

// errRejected is a message refused by Check, with the reason's label.
type errRejected struct {
	reason string
	err    error
}

func (e *errRejected) Error() string { return e.err.Error() }
func (e *errRejected) Unwrap() error { return e.err }

func reject(reason string, format string, a ...any) error {
	return &errRejected{reason: reason, err: fmt.Errorf(format, a...)}
}

// Check parses and verifies a message of the topic of authority from
// peer from: from is in the directory, the message fits and parses, its
// heads are authority's and pass the trust rule, a cosignature verifies
// with its witness's key from the directory, evidence proves something.
func (g *Gossip) Check(authority identity.ID, from peer.ID, data []byte) (*protocol.GossipMessage, error) {
	if len(data) > protocol.MaxGossipMessageSize {
		return nil, reject("size", "%d bytes, maximum %d", len(data), protocol.MaxGossipMessageSize)
	}
	if !g.dir.Has(from) {
		return nil, reject("stranger", "from %s, not in the identity directory", from)
	}
	m, err := protocol.ParseGossipMessage(data)
	if err != nil {
		return nil, reject("malformed", "%v", err)
	}
	if m.Evidence != nil {
		if _, err := m.Evidence.Verify(g.trust); err != nil {
			return nil, reject("signature", "evidence: %v", err)
		}
		if m.Evidence.First.Head.ServerID != authority {
			return nil, reject("topic", "evidence against %s on the topic of %s", m.Evidence.First.Head.ServerID, authority)
		}
		return m, nil
	}
	if m.Head.Head.ServerID != authority {
		return nil, reject("topic", "a head of %s on the topic of %s", m.Head.Head.ServerID, authority)
	}
	if _, err := g.trust.CheckTreeHead(m.Head.Encoded, m.Head.Signature, g.cache); err != nil {
		return nil, reject("signature", "%v", err)
	}
	if m.Cosig != nil {
		c := m.Cosig.Cosig
		w, err := g.dir.Lookup(c.WitnessID)
		switch {
		case err != nil:
			return nil, reject("stranger", "a cosignature by %s, not in the identity directory", c.WitnessID)
		case w.PeerID != c.WitnessPeer:
			return nil, reject("signature", "a cosignature as %s by peer %s, but %s is %s", c.WitnessID, c.WitnessPeer, c.WitnessID, w.PeerID)
		}
		if err := protocol.VerifySignature(w.PublicKey, m.Cosig.Encoded, m.Cosig.Signature); err != nil {
			return nil, reject("signature", "the cosignature of %s does not verify", c.WitnessID)
		}
	}
	return m, nil
}

func (g *Gossip) validator(authority identity.ID, cosignatures bool) pubsub.ValidatorEx {
	return func(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		m, err := g.Check(authority, msg.ReceivedFrom, msg.Data)
		if err == nil && protocol.IsCosigned(msg.Data) != cosignatures {
			err = reject("topic", "a message of the other topic of %s", authority)
		}
		if err != nil {
			var r *errRejected
			if errors.As(err, &r) {
				g.metrics.Rejected(r.reason)
			}
			log.Debugw("gossip message rejected", "topic", msg.GetTopic(), "from", from, "err", err)
			return pubsub.ValidationReject
		}
		msg.ValidatorData = m
		return pubsub.ValidationAccept
	}
}
