package witness

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// maxCollected bounds the heads a Collector remembers.
const maxCollected = 256

// Collector gathers, from the topic of one authority, the cosignatures
// that a witness policy counts, for a requester that wants a head
// cosigned by K witnesses.
type Collector struct {
	authority identity.ID
	policy    *protocol.WitnessPolicy
	subs      []*pubsub.Subscription // the heads' topic and the cosignatures'
	cancel    context.CancelFunc
	done      chan struct{}

	mu       sync.Mutex
	seen     *headRing // every head of the topic, to catch a fork as a witness does
	heads    map[[32]byte]*collected
	order    [][32]byte
	evidence *protocol.Evidence
	changed  chan struct{} // closed and replaced on every change
}

type collected struct {
	head   *protocol.SignedTreeHead
	cosigs map[identity.ID]*protocol.SignedCosignature
}

// NewCollector subscribes to the topic of authority. Subscribe before
// stamping: cosignatures are published once.
func NewCollector(g *Gossip, authority identity.ID, policy *protocol.WitnessPolicy) (*Collector, error) {
	heads, err := g.Subscribe(authority)
	if err != nil {
		return nil, err
	}
	cosigs, err := g.SubscribeCosignatures(authority)
	if err != nil {
		heads.Cancel()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Collector{authority: authority, policy: policy, subs: []*pubsub.Subscription{heads, cosigs}, cancel: cancel, done: make(chan struct{}),
		seen: newHeadRing(maxCollected), heads: map[[32]byte]*collected{}, changed: make(chan struct{})}
	var wg sync.WaitGroup
	for _, sub := range c.subs {
		wg.Go(func() { c.run(ctx, sub) })
	}
	go func() { wg.Wait(); close(c.done) }()
	return c, nil
}

// Close stops collecting.
func (c *Collector) Close() error {
	c.cancel()
	for _, sub := range c.subs {
		sub.Cancel()
	}
	<-c.done
	return nil
}

func (c *Collector) run(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		m, ok := msg.ValidatorData.(*protocol.GossipMessage)
		if !ok {
			continue
		}
		c.take(m)
	}
}

func (c *Collector) take(m *protocol.GossipMessage) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() { close(c.changed); c.changed = make(chan struct{}) }()
	if m.Evidence != nil {
		if c.evidence == nil {
			c.evidence = m.Evidence
		}
		return
	}
	// A requester that joined after the witnesses published their
	// evidence still sees both views' heads: it finds the fork itself.
	if c.evidence == nil && c.seen.add(m.Head) {
		for _, x := range c.seen.all() {
			if e := protocol.FindEquivocation(x, m.Head, nil); e != nil {
				c.evidence = e
				return
			}
		}
	}
	if m.Cosig == nil {
		return
	}
	sc, err := c.policy.CheckCosignature(m.Head.Head, m.Cosig.Encoded, m.Cosig.Signature)
	if err != nil {
		return // a witness this requester does not count, or a late one
	}
	k := sha256.Sum256(m.Head.Encoded)
	e := c.heads[k]
	if e == nil {
		if len(c.order) >= maxCollected {
			delete(c.heads, c.order[0])
			c.order = c.order[1:]
		}
		e = &collected{head: m.Head, cosigs: map[identity.ID]*protocol.SignedCosignature{}}
		c.heads[k] = e
		c.order = append(c.order, k)
	}
	e.cosigs[sc.Cosig.WitnessID] = sc
}

// Wait returns the smallest head of at least minSize that K witnesses of
// the policy cosigned, with K of their cosignatures. It fails when ctx
// ends first, naming the witnesses that cosigned such a head and those
// that did not, or at once when the topic carried evidence that the
// authority equivocated.
func (c *Collector) Wait(ctx context.Context, minSize uint64) (*protocol.SignedTreeHead, []*protocol.SignedCosignature, error) {
	for {
		c.mu.Lock()
		head, cosigs, cosigned := c.best(minSize)
		ev, changed := c.evidence, c.changed
		c.mu.Unlock()
		if ev != nil {
			return nil, nil, fmt.Errorf("%w: %s equivocated (%s: heads of size %d and %d): its heads prove nothing", protocol.ErrNotWitnessed, c.authority, ev.Kind(), ev.First.Head.Size, ev.Second.Head.Size)
		}
		if head != nil {
			return head, cosigs, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			var missing []string
			for _, id := range c.policy.Witnesses() {
				if !cosigned[id] {
					missing = append(missing, string(id))
				}
			}
			var got []string
			for id := range cosigned {
				got = append(got, string(id))
			}
			slices.Sort(got)
			return nil, nil, fmt.Errorf("%w: %d of %d cosignatures for a head of size %d or more of %s: cosigned by %s; no cosignature from %s",
				protocol.ErrNotWitnessed, len(got), c.policy.K(), minSize, c.authority, orNone(got), orNone(missing))
		}
	}
}

// best finds the smallest head of at least minSize with K cosignatures,
// and which witnesses cosigned some head of at least minSize. Called
// with c.mu held.
func (c *Collector) best(minSize uint64) (*protocol.SignedTreeHead, []*protocol.SignedCosignature, map[identity.ID]bool) {
	var best *collected
	cosigned := map[identity.ID]bool{}
	for _, e := range c.heads {
		if e.head.Head.Size < minSize {
			continue
		}
		for id := range e.cosigs {
			cosigned[id] = true
		}
		if len(e.cosigs) >= c.policy.K() && (best == nil || e.head.Head.Size < best.head.Head.Size ||
			(e.head.Head.Size == best.head.Head.Size && e.head.Head.Time.Before(best.head.Head.Time))) {
			best = e
		}
	}
	if best == nil {
		return nil, nil, cosigned
	}
	ids := make([]identity.ID, 0, len(best.cosigs))
	for id := range best.cosigs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cosigs := make([]*protocol.SignedCosignature, 0, c.policy.K())
	for _, id := range ids[:c.policy.K()] {
		cosigs = append(cosigs, best.cosigs[id])
	}
	return best.head, cosigs, cosigned
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// ClockNote explains, for a stamp's head dated at t, why witnesses would
// refuse it: its time is more than tolerance from now. "" if it is not.
func ClockNote(t, now time.Time, tolerance time.Duration) string {
	d := t.Sub(now)
	switch {
	case d > tolerance:
		return fmt.Sprintf("the server's tree head is dated %s, %v ahead of this clock (witnesses refuse heads more than %v off)", protocol.FormatTime(t), d.Round(time.Second), tolerance)
	case -d > tolerance:
		return fmt.Sprintf("the server's tree head is dated %s, %v behind this clock (witnesses refuse heads more than %v off)", protocol.FormatTime(t), (-d).Round(time.Second), tolerance)
	}
	return ""
}
