package witness

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/protocol"
)

// Config is what a witness needs.
type Config struct {
	Self identity.Entry
	Key  *rsa.PrivateKey
	// Trust is the authorities followed; Logs reaches each one's log.
	Trust *protocol.Trust
	Logs  map[identity.ID][]*logsync.Client
	// DataDir holds the state and the evidence.
	DataDir string
	// Tolerance bounds how far a head's time may be from Now
	// (0: DefaultClockTolerance); StaleAfter is how long without a head
	// dated later before an authority counts as stalled (0: Heartbeat
	// plus the tolerance plus ten seconds).
	Tolerance, StaleAfter time.Duration
	Now                   func() time.Time
}

// Witness follows the topics of the authorities it trusts, cosigns each
// head it checked, and holds evidence when an authority equivocates.
type Witness struct {
	g     *Gossip
	cfg   Config
	state *State
	ev    *evidenceStore
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu      sync.Mutex
	follows map[identity.ID]*follow
}

// follow is what the witness knows of one authority.
type follow struct {
	id    identity.ID
	logs  []*logsync.Client
	sub   *pubsub.Subscription
	seen  *headRing
	start time.Time
	// Guarded by Witness.mu.
	latest time.Time // the latest head time seen
}

// New starts a witness on g for every authority cfg.Trust holds.
func New(g *Gossip, cfg Config) (*Witness, error) {
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = DefaultClockTolerance
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = Heartbeat + cfg.Tolerance + 10*time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	state, err := OpenState(cfg.DataDir, cfg.Self.ID, cfg.Trust)
	if err != nil {
		return nil, err
	}
	ev, err := openEvidence(cfg.DataDir, cfg.Trust)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &Witness{g: g, cfg: cfg, state: state, ev: ev, ctx: ctx, stop: stop, follows: map[identity.ID]*follow{}}
	for _, id := range cfg.Trust.Authorities() {
		if len(cfg.Logs[id]) == 0 {
			stop()
			return nil, fmt.Errorf("witness: no --server to reach the log of %s", id)
		}
		sub, err := g.Subscribe(id)
		if err != nil {
			stop()
			return nil, err
		}
		f := &follow{id: id, logs: cfg.Logs[id], sub: sub, seen: newHeadRing(256), start: cfg.Now()}
		w.follows[id] = f
		if ev.against(id) != "" {
			log.Errorw("equivocation: evidence already held; cosigning nothing of this authority", "authority", id, "evidence", ev.against(id))
		}
		w.wg.Add(1)
		go w.run(f)
	}
	return w, nil
}

// Close stops following.
func (w *Witness) Close() error {
	w.stop()
	for _, f := range w.follows {
		f.sub.Cancel()
	}
	w.wg.Wait()
	return nil
}

// State is the witness's durable state.
func (w *Witness) State() *State { return w.state }

// Evidence returns the path of the evidence file held against authority,
// or "".
func (w *Witness) Evidence(authority identity.ID) string { return w.ev.against(authority) }

// Ready fails while an authority followed is proven to equivocate, or
// has published no head dated within StaleAfter.
func (w *Witness) Ready() error {
	var errs []error
	now := w.cfg.Now()
	ids := make([]identity.ID, 0, len(w.follows))
	for id := range w.follows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		f := w.follows[id]
		if p := w.ev.against(id); p != "" {
			errs = append(errs, fmt.Errorf("authority %s equivocated (evidence %s)", id, p))
			continue
		}
		w.mu.Lock()
		latest := f.latest
		w.mu.Unlock()
		if since := latest; since.IsZero() {
			since = f.start
			if now.Sub(since) > w.cfg.StaleAfter {
				errs = append(errs, fmt.Errorf("authority %s: no tree head in %v", id, now.Sub(since).Round(time.Second)))
			}
		} else if now.Sub(latest) > w.cfg.StaleAfter {
			errs = append(errs, fmt.Errorf("authority %s stalled: its latest head is dated %s, %v ago", id, protocol.FormatTime(latest), now.Sub(latest).Round(time.Second)))
		}
	}
	return errors.Join(errs...)
}

// run reads the topic of f's authority. What needs no network (evidence,
// comparing a head with those seen) happens here at once; what needs the
// server's log happens in check's own goroutine, so that a slow or
// unreachable server never holds up the topic (pubsub drops what a slow
// subscriber does not take).
func (w *Witness) run(f *follow) {
	defer w.wg.Done()
	pending := make(chan *protocol.SignedTreeHead, pendingHeads)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// At start, and whenever the topic has been quiet for a while,
		// ask the server for its latest head: a witness that restarted,
		// or whose links to the mesh are still being re-established, need
		// not wait for the log to grow or for the next fresh head.
		t := time.NewTicker(catchUp)
		defer t.Stop()
		last := time.Time{}
		for {
			if time.Since(last) >= catchUp {
				w.catchUp(f)
				last = time.Now()
			}
			select {
			case <-w.ctx.Done():
				return
			case h := <-pending:
				w.checkWithLog(f, h)
				last = time.Now()
			case <-t.C:
			}
		}
	}()
	for {
		msg, err := f.sub.Next(w.ctx)
		if err != nil {
			return // cancelled
		}
		m, ok := msg.ValidatorData.(*protocol.GossipMessage)
		if !ok {
			continue
		}
		if m.Evidence != nil {
			w.hold(f.id, m.Evidence, false)
			continue
		}
		if !w.onHead(f, m.Head) {
			continue
		}
		select {
		case pending <- m.Head:
		default:
			log.Warnw("tree head not checked: the checks of earlier heads are still waiting for the server", "authority", f.id, "size", m.Head.Head.Size)
		}
	}
}

// pendingHeads bounds the heads waiting for the server's log.
const pendingHeads = 64

// catchUp is how long the topic may be quiet before a witness asks the
// server for its latest head itself.
const catchUp = 5 * time.Second

// catchUp fetches the latest head of a server of f's authority and
// checks it as if it came from the topic.
func (w *Witness) catchUp(f *follow) {
	if w.ev.against(f.id) != "" {
		return
	}
	ctx, cancel := context.WithTimeout(w.ctx, checkTimeout)
	defer cancel()
	for _, c := range f.logs {
		latest, _, err := c.Fetch(ctx, 0, 0)
		if err != nil {
			continue
		}
		// Checked even if seen before: a head whose check failed (the
		// server did not answer in time, say) is tried again here.
		w.onHead(f, latest)
		w.checkWithLog(f, latest)
		return
	}
}

// checkTimeout bounds the log exchanges of one head's check.
const checkTimeout = 10 * time.Second

// onHead takes a head of f's authority, validated by the topic: from the
// authority itself or carried by another witness's cosignature. It
// reports whether the head still needs checking against the log: it is
// new, and the authority is not known to equivocate.
func (w *Witness) onHead(f *follow, h *protocol.SignedTreeHead) bool {
	if !f.seen.add(h) {
		return false // seen before
	}
	w.mu.Lock()
	if h.Head.Time.After(f.latest) {
		f.latest = h.Head.Time
	}
	w.mu.Unlock()
	// Against every head seen: two of one size, or a smaller one dated
	// later, need no proof.
	for _, x := range f.seen.all() {
		if e := protocol.FindEquivocation(x, h, nil); e != nil {
			w.hold(f.id, e, true)
			return false
		}
	}
	return w.ev.against(f.id) == ""
}

// checkWithLog checks h against the log of each of the authority's
// servers in turn, until one check is conclusive.
func (w *Witness) checkWithLog(f *follow, h *protocol.SignedTreeHead) {
	if w.ev.against(f.id) != "" {
		return // cosign nothing more of an authority that equivocated
	}
	ctx, cancel := context.WithTimeout(w.ctx, checkTimeout)
	defer cancel()
	for _, c := range f.logs {
		err := w.check(ctx, f, c, h)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Infow("tree head not cosigned", "authority", f.id, "size", h.Head.Size, "server", c.Server.ID, "err", err)
	}
}

// newer reports whether h is after last: larger, or as large and later.
func newer(h, last *protocol.SignedTreeHead) bool {
	return h.Head.Size > last.Head.Size || (h.Head.Size == last.Head.Size && h.Head.Time.After(last.Head.Time))
}

// errNotInView: the server reached has not (yet) got a tree as large as
// the head: it is another view's, or ahead of this replica.
var errNotInView = errors.New("not in the log of the server reached")

// check compares h with the log of the server c reaches, proves an
// equivocation if h is not in it, and cosigns h if it is and extends the
// last head cosigned.
func (w *Witness) check(ctx context.Context, f *follow, c *logsync.Client, h *protocol.SignedTreeHead) error {
	latest, _, err := c.Fetch(ctx, 0, 0)
	if err != nil {
		return err
	}
	if !w.onHead(f, latest) && w.ev.against(f.id) != "" {
		return nil // the server's own head proved an equivocation
	}
	if e, err := w.compare(ctx, c, h, latest); err != nil || e != nil {
		if e != nil {
			w.hold(f.id, e, true)
			return nil
		}
		return err
	}
	last := w.state.Last(f.id)
	if last != nil && !newer(h, last) {
		return nil // in the log, and not after what was cosigned
	}
	var proof []tlog.Hash
	if last != nil && last.Head.Size < h.Head.Size {
		if _, proof, err = c.Fetch(ctx, last.Head.Size, h.Head.Size); err != nil {
			return err
		}
	}
	if err := w.cfg.Trust.CheckCosignable(last, h, proof, w.cfg.Now(), w.cfg.Tolerance); err != nil {
		if last != nil && errors.Is(err, protocol.ErrInconsistent) && last.Head.Size < h.Head.Size {
			if e := w.prove(ctx, c, last, h, proof); e != nil {
				w.hold(f.id, e, true)
				return nil
			}
		}
		return err
	}
	return w.cosign(ctx, f, h)
}

// compare checks that h is in the tree of latest, the server's latest
// head: it returns evidence if the server's log shows it is not.
func (w *Witness) compare(ctx context.Context, c *logsync.Client, h, latest *protocol.SignedTreeHead) (*protocol.Evidence, error) {
	switch m, n := h.Head.Size, latest.Head.Size; {
	case m > n:
		return nil, fmt.Errorf("%w: head of size %d, server %s is at %d", errNotInView, m, c.Server.ID, n)
	case m == n:
		return protocol.FindEquivocation(h, latest, nil), nil
	default:
		_, proof, err := c.Fetch(ctx, m, n)
		if err != nil {
			return nil, err
		}
		if e := w.prove(ctx, c, h, latest, proof); e != nil {
			return e, nil
		}
		// Not proven foreign; but cosign it only if it is a prefix of this
		// server's log (for size 1, say, no evidence can be made).
		if err := protocol.VerifyConsistency(m, h.Head.Root, n, latest.Head.Root, proof); err != nil {
			return nil, fmt.Errorf("the head of size %d is not a prefix of server %s's log of size %d: %w", m, c.Server.ID, n, err)
		}
		return nil, nil
	}
}

// prove returns the evidence that small is not a prefix of large, from
// the consistency proof between their sizes that the server c, whose
// log signed large, gave; nil if it does not show that.
func (w *Witness) prove(ctx context.Context, c *logsync.Client, small, large *protocol.SignedTreeHead, proof []tlog.Hash) *protocol.Evidence {
	path, ok := w.path(ctx, c, small.Head.Size, large.Head.Size, proof)
	if !ok {
		return nil
	}
	return protocol.FindEquivocation(small, large, path)
}

// path turns the proof from m to n into a consistency path: when m is a
// power of two the path starts with the root of the server's first m
// leaves, which the proof leaves out; the last hash of the proof from
// m+1 to a size in (m+1, 2m] is that root. ok is false when no such size
// exists (m = 1, or n = m+1).
func (w *Witness) path(ctx context.Context, c *logsync.Client, m, n uint64, proof []tlog.Hash) ([]tlog.Hash, bool) {
	if m&(m-1) != 0 {
		return protocol.ConsistencyPath(m, proof, tlog.Hash{}), true
	}
	if m < 2 || n < m+2 {
		return nil, false
	}
	_, p, err := c.Fetch(ctx, m+1, min(n, 2*m))
	if err != nil || len(p) == 0 {
		return nil, false
	}
	return protocol.ConsistencyPath(m, proof, p[len(p)-1]), true
}

// cosign saves h as the last head cosigned, then signs and publishes the
// cosignature: a crash between the two loses a cosignature, never the
// record that h was cosigned.
func (w *Witness) cosign(ctx context.Context, f *follow, h *protocol.SignedTreeHead) error {
	if err := w.state.Save(h); err != nil {
		return err
	}
	sc, err := protocol.SignCosignature(w.cfg.Key, protocol.NewCosignature(h.Head, w.cfg.Self, w.cfg.Now()))
	if err != nil {
		return err
	}
	if err := w.g.Publish(ctx, f.id, protocol.EncodeGossipCosigned(h, sc)); err != nil {
		return fmt.Errorf("publishing the cosignature: %w", err)
	}
	w.g.metrics.Cosigned(f.id)
	log.Debugw("tree head cosigned", "authority", f.id, "size", h.Head.Size, "time", protocol.FormatTime(h.Head.Time))
	return nil
}

// hold keeps evidence against authority (the first only), says so, and,
// when this witness found it, publishes it.
func (w *Witness) hold(authority identity.ID, e *protocol.Evidence, found bool) {
	path, isNew, err := w.ev.hold(authority, e)
	if err != nil {
		log.Errorw("equivocation: evidence not written", "authority", authority, "kind", e.Kind(), "err", err)
	}
	if !isNew {
		return
	}
	w.g.metrics.Equivocation(authority)
	log.Errorw("equivocation: authority signed two tree heads that cannot both be true; cosigning nothing more of it",
		"authority", authority, "kind", e.Kind(), "first_size", e.First.Head.Size, "second_size", e.Second.Head.Size, "evidence", path)
	if found {
		if err := w.g.Publish(w.ctx, authority, protocol.EncodeGossipEvidence(e)); err != nil && w.ctx.Err() == nil {
			log.Warnw("evidence not published", "authority", authority, "err", err)
		}
	}
}
