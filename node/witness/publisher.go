package witness

import (
	"context"
	"errors"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// HeadSource is the authority a Publisher publishes: its latest signed
// head, and a fresh head of the same tree on demand.
type HeadSource interface {
	Head() *protocol.SignedTreeHead
	Refresh(ctx context.Context) (*protocol.SignedTreeHead, error)
}

// Publisher publishes an authority's signed heads on its topic: the
// latest one once per interval when the log grew, and a fresh head of
// the same tree once per heartbeat when it did not.
type Publisher struct {
	g         *Gossip
	self      identity.ID
	src       HeadSource
	interval  time.Duration
	heartbeat time.Duration
	cancel    context.CancelFunc
	done      chan struct{}
	subs      []*pubsub.Subscription // read only to be in the meshes

	mu   sync.Mutex
	last *protocol.SignedTreeHead
}

// NewPublisher starts publishing the heads of src, the authority self,
// every interval (0: DefaultCheckpointInterval), with a fresh head at
// least every heartbeat (0: Heartbeat).
func NewPublisher(g *Gossip, self identity.ID, src HeadSource, interval, heartbeat time.Duration) (*Publisher, error) {
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	if heartbeat <= 0 {
		heartbeat = Heartbeat
	}
	// Subscribed to both topics, the authority is in their meshes: it
	// relays heads and evidence to the witnesses, and the witnesses'
	// cosignatures to its requesters.
	heads, err := g.Subscribe(self)
	if err != nil {
		return nil, err
	}
	cosigs, err := g.SubscribeCosignatures(self)
	if err != nil {
		heads.Cancel()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{g: g, self: self, src: src, interval: interval, heartbeat: heartbeat, cancel: cancel, done: make(chan struct{}),
		subs: []*pubsub.Subscription{heads, cosigs}}
	go p.run(ctx)
	for _, sub := range p.subs {
		go func() {
			for {
				if _, err := sub.Next(ctx); err != nil {
					return
				}
			}
		}()
	}
	return p, nil
}

// Close stops publishing and relaying.
func (p *Publisher) Close() error {
	p.cancel()
	for _, sub := range p.subs {
		sub.Cancel()
	}
	<-p.done
	return nil
}

// Last is the head published last, nil before the first.
func (p *Publisher) Last() *protocol.SignedTreeHead {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	// The head signed at start is dated by the last batch, which may be
	// older than heads published before a restart: start fresh.
	var published time.Time
	if p.refresh(ctx) {
		published = time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		last, h := p.Last(), p.src.Head()
		switch {
		case h != nil && (last == nil || h.Head.Size > last.Head.Size):
			if p.publish(ctx, h) {
				published = time.Now()
			}
		case time.Since(published) >= p.heartbeat:
			if p.refresh(ctx) {
				published = time.Now()
			}
		}
	}
}

// refresh signs a fresh head and publishes it.
func (p *Publisher) refresh(ctx context.Context) bool {
	h, err := p.src.Refresh(ctx)
	switch {
	case errors.Is(err, authority.ErrBusy):
		if h = p.src.Head(); h == nil {
			return false
		}
	case err != nil:
		if ctx.Err() == nil {
			log.Warnw("fresh tree head not signed", "err", err)
		}
		return false
	case h == nil: // an empty log: nothing to publish yet
		return false
	}
	return p.publish(ctx, h)
}

func (p *Publisher) publish(ctx context.Context, h *protocol.SignedTreeHead) bool {
	if err := p.g.Publish(ctx, p.self, protocol.EncodeGossipHead(h)); err != nil {
		if ctx.Err() == nil {
			log.Warnw("tree head not published", "size", h.Head.Size, "err", err)
		}
		return false
	}
	p.mu.Lock()
	p.last = h
	p.mu.Unlock()
	log.Debugw("tree head published", "size", h.Head.Size, "time", protocol.FormatTime(h.Head.Time))
	return true
}
