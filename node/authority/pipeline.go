package authority

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/protocol"
)

// batch is what one Append made of the requests taken from the queue,
// in their order. Requests dropped (ctx done) or failed (the append
// failed) stay in it with fail set, so that they are answered in order.
type batch struct {
	reqs   []*request
	b      merklelog.Batch
	stamps int       // leaves appended (0: the append failed or was not needed)
	wait   time.Time // Add time of the oldest appended stamp of Add, or zero
	any    time.Time // Add time of the oldest appended stamp
	last   time.Time // Add time of the newest request
}

// group is the batches one head covers, in order, and that head.
type group struct {
	batches []*batch
	first   uint64 // index of the first leaf
	size    uint64 // tree size of the head
	root    tlog.Hash
	time    time.Time // of the tree's last batch
	proofs  bool      // some stamp of Add needs an inclusion proof
	signed  chan struct{}
	sth     *protocol.SignedTreeHead
	err     error
	// refreshed, for a fresh head of the same tree, is the Refresh
	// waiting for it.
	refreshed *refreshReq
}

// appendLoop appends the queued stamps, batch after batch, and hands each
// batch to the pacer. Appends run while a head is being signed, so stamps
// are durable by the time the pacer wants them. When stamps arrive densely
// (the last batch held more than one), it lingers a little to append more
// of them at once: every append is a bbolt transaction and an fsync, and
// a head waits for its stamps anyway; a lone stamp is appended at once.
func (a *Authority) appendLoop() {
	defer close(a.appended)
	dense := false
	var appendDur time.Duration
	for first := range a.queue {
		reqs := append(make([]*request, 0, 64), first)
		if !first.durable {
			a.collect(appendDur)
		}
		reqs = a.drain(reqs)
		if dense {
			reqs = a.linger(reqs)
		}
		dense = len(reqs) > 1
		t0 := time.Now()
		b := a.append(reqs)
		appendDur += (time.Since(t0) - appendDur) / 8
		a.appended <- b
	}
}

// collect waits, while a head is being signed, until shortly before the
// signature should end (or ends): the stamps that arrive meanwhile can
// only make the next head, so they are appended together, in one
// transaction and fsync, just in time for it.
func (a *Authority) collect(appendDur time.Duration) {
	end := a.signEnd.Load()
	if end == 0 {
		return
	}
	d := time.Until(time.Unix(0, end).Add(-appendDur - time.Millisecond))
	if d <= 0 {
		return
	}
	t := time.NewTimer(min(d, maxCollect))
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.signEnded:
	}
}

// drain takes what is queued, up to MaxBatch.
func (a *Authority) drain(reqs []*request) []*request {
	for len(reqs) < a.maxBatch {
		select {
		case r, ok := <-a.queue:
			if !ok {
				return reqs
			}
			reqs = append(reqs, r)
		default:
			return reqs
		}
	}
	return reqs
}

// linger keeps taking stamps for up to appendLinger after the first one,
// until the batch is worth a head, a stamp of AddDurable (whose requester
// waits for the append alone) is in it, or none arrives for quietGap.
func (a *Authority) linger(reqs []*request) []*request {
	deadline := reqs[0].added.Add(min(appendLinger, a.maxWait/2))
	worth := int(a.worthHint.Load())
	timer := time.NewTimer(quietGap)
	defer timer.Stop()
	for len(reqs) < a.maxBatch && len(reqs) < worth && time.Now().Before(deadline) {
		if reqs[len(reqs)-1].durable {
			return reqs
		}
		timer.Reset(min(quietGap, time.Until(deadline)))
		select {
		case r, ok := <-a.queue:
			if !ok {
				return reqs
			}
			reqs = a.drain(append(reqs, r))
		case <-timer.C:
			return reqs
		}
	}
	return reqs
}

// append makes the live requests of reqs one durable batch and answers
// the requests of AddDurable.
func (a *Authority) append(reqs []*request) *batch {
	b := &batch{reqs: reqs, last: reqs[len(reqs)-1].added}
	live := make([]*request, 0, len(reqs))
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.fail = err // dropped: never logged
		} else {
			live = append(live, r)
		}
	}
	now := a.dated(a.now())
	if err := a.checkClock(now); err != nil && len(live) > 0 {
		for _, r := range live {
			r.fail = err
		}
		live = live[:0]
	}
	if len(live) > 0 {
		serverPeer := a.peerString(a.self.PeerID)
		t0 := time.Now()
		mb, err := a.log.Append(func(first uint64, t time.Time) ([][]byte, error) {
			leaves := make([][]byte, len(live))
			for i, r := range live {
				r.serial = first + uint64(i)
				if r.e.RFC3161 != nil {
					l := *r.e.RFC3161
					l.Time, l.Serial, l.ServerID, l.ServerPeer = t, r.serial, a.self.ID, a.self.PeerID
					r.tsa, r.leaf = &l, l.Encode()
					leaves[i] = r.leaf
					continue
				}
				r.stmt = &protocol.Statement{
					HashAlgorithm: protocol.HashAlgorithm,
					DocumentHash:  r.e.Hash,
					Time:          t,
					Serial:        first + uint64(i),
					RequesterID:   r.e.Requester.ID,
					RequesterPeer: r.e.Requester.PeerID,
					ServerID:      a.self.ID,
					ServerPeer:    a.self.PeerID,
					Nonce:         r.e.Nonce,
				}
				r.leaf = r.stmt.EncodeWith(protocol.LeafTag, a.peerString(r.e.Requester.PeerID), serverPeer)
				leaves[i] = r.leaf
			}
			return leaves, nil
		}, now)
		if err != nil {
			err = fmt.Errorf("authority: appending %d stamps to the log: %w", len(live), err)
			log.Errorw("append failed", "stamps", len(live), "err", err)
			for _, r := range live {
				r.fail = err
			}
			a.health.appendErr.Store(&err)
		} else {
			a.metrics.Appended(len(live), time.Since(t0))
			a.health.appendErr.Store(nil)
			b.b, b.stamps = mb, len(live)
			b.any = live[0].added
			for _, r := range live {
				if !r.durable && b.wait.IsZero() {
					b.wait = r.added
				}
			}
		}
	}
	// Counted as answered before they are: whoever sees an answer sees
	// the pipeline's health count it (Lag, CheckLag).
	answered := 0
	for _, r := range reqs {
		if r.durable {
			answered++
		}
	}
	a.answered(answered)
	for _, r := range reqs {
		if r.durable {
			if r.fail != nil {
				r.resolve(nil, r.fail)
			} else {
				r.resolve(&Stamp{Statement: r.stmt, RFC3161: r.tsa, Leaf: r.leaf}, nil)
			}
		}
	}
	return b
}

// paceLoop gathers appended batches and signs a head over them when the
// pacer says so; once the appender stops it signs what is left at once.
func (a *Authority) paceLoop(p *pacer) {
	defer close(a.groups)
	in := a.appended
	var pending []*batch
	var seen int64 // requests received from the appender
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var ready time.Time // when the last signature ended
	take := func(b *batch, ok bool) {
		if !ok {
			in = nil
			return
		}
		pending = append(pending, b)
		seen += int64(len(b.reqs))
		p.observe(len(b.reqs), b.last)
	}
	for in != nil || len(pending) > 0 {
		// Take in everything appended so far before deciding.
	drain:
		for in != nil {
			select {
			case b, ok := <-in:
				take(b, ok)
			default:
				break drain
			}
		}
		if len(pending) == 0 {
			if in != nil {
				select {
				case b, ok := <-in:
					take(b, ok)
				case r := <-a.refresh:
					a.refreshHead(r, seen)
				}
			}
			continue
		}
		s := a.state(pending, seen)
		s.ready = ready
		if s.stamps == 0 { // only dropped or failed stamps: answer them
			g := &group{batches: pending, signed: make(chan struct{})}
			close(g.signed)
			a.groups <- g
			pending = nil
			continue
		}
		var wait time.Duration
		now := in == nil
		if !now {
			now, wait = p.decide(s)
		}
		if now {
			pending = a.signGroup(p, pending)
			ready = time.Now()
			continue
		}
		timer.Reset(wait)
		select {
		case b, ok := <-in:
			take(b, ok)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// state sums up pending for the pacer.
func (a *Authority) state(pending []*batch, seen int64) state {
	s := state{now: time.Now(), appending: a.added.Load() > seen}
	s.lastAdd = a.start.Add(time.Duration(a.lastAdd.Load()))
	for _, b := range pending {
		s.stamps += b.stamps
		if s.oldest.IsZero() {
			s.oldest = b.wait
		}
		if s.oldestAny.IsZero() {
			s.oldestAny = b.any
		}
	}
	return s
}

// signGroup signs a head over the oldest pending batches, up to MaxBatch
// stamps (at least one batch), hands them to the deliverer and returns
// the rest.
func (a *Authority) signGroup(p *pacer, pending []*batch) []*batch {
	g := &group{signed: make(chan struct{})}
	stamps, n := 0, 0
	var last *batch
	for ; n < len(pending); n++ {
		b := pending[n]
		if last != nil && stamps+b.stamps > a.maxBatch {
			break
		}
		if b.stamps > 0 {
			if last == nil {
				g.first = b.b.FirstIndex
			}
			last = b
			stamps += b.stamps
			for _, r := range b.reqs {
				g.proofs = g.proofs || (!r.durable && r.fail == nil)
			}
		}
	}
	g.batches = pending[:n:n]
	g.size, g.root, g.time = last.b.Size, last.b.Root, last.b.Time
	// The deliverer computes the proofs, and guards the tree, while the
	// head is being signed.
	a.groups <- g
	before := a.added.Load()
	t0 := time.Now()
	// Drain a stale end-of-signature signal, then announce when this one
	// should end: the appender collects until shortly before.
	select {
	case <-a.signEnded:
	default:
	}
	a.signEnd.Store(t0.Add(p.signTime).UnixNano())
	g.sth, g.err = a.sign(g.size, g.root, g.time)
	a.signEnd.Store(0)
	select {
	case a.signEnded <- struct{}{}:
	default:
	}
	signTime := time.Since(t0)
	p.signed(signTime, a.added.Load() == before)
	a.worthHint.Store(int64(p.worth()))
	if g.err != nil {
		g.err = &headError{kind: ErrNotSigned, what: "signing the tree head", size: g.size, err: g.err}
		log.Errorw("tree head signature failed", "size", g.size, "stamps", stamps, "err", g.err)
		a.health.headErr.Store(&g.err)
	} else {
		a.metrics.HeadSigned(stamps, signTime)
		a.lastSigned = g.sth
	}
	close(g.signed)
	return pending[n:]
}

// peerString is p.String(), remembered for the peers that stamp: base58
// encoding is a large part of the cost of a leaf. Appender only.
func (a *Authority) peerString(p peer.ID) string {
	if str, ok := a.peerStrs[p]; ok {
		return str
	}
	if len(a.peerStrs) >= 4096 {
		clear(a.peerStrs)
	}
	str := p.String()
	a.peerStrs[p] = str
	return str
}
