package logsigner

import (
	logging "github.com/ipfs/go-log/v2"
	"tsnode/protocol"

	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"tsnode/identity"
	"tsnode/internal/crtsign"
	"tsnode/internal/merklelog"
)

var log = logging.Logger("tsnode/authority")

// MaxBatch bounds how many stamps one tree head signs.
const MaxBatch = 4096

// appendWait bounds how long a signer ready to sign waits for the append
// in progress, to include it: about one fsync.
const appendWait = 2 * time.Millisecond

// coalesceMargin is how long before a signature should end, less the
// time of an append, the appender appends what came during it; it never
// waits more than maxCoalesce.
const (
	coalesceMargin = time.Millisecond
	maxCoalesce    = 50 * time.Millisecond
)

// average moves a running average a eighth of the way to d.
func average(a, d time.Duration) time.Duration {
	if a == 0 {
		return d
	}
	return a + (d-a)/8
}

// ErrSignerClosed is returned for stamps submitted after Close.
var ErrSignerClosed = errors.New("log signer closed")

// logRequest is a stamp waiting for its batch.
type logRequest struct {
	requester identity.Entry
	hash      []byte
	nonce     []byte
	done      func(*protocol.LogStamp, error)
}

// appended is a batch whose leaves are durable, waiting for a signed
// tree head that covers them.
type appended struct {
	reqs   []*logRequest
	stmts  []*protocol.Statement
	leaves [][]byte
	b      merklelog.Batch
}

// signedGroup is one or more consecutive appended batches and the signed
// head of the tree that ends with the last of them.
type signedGroup struct {
	batches []*appended
	sth     *protocol.SignedTreeHead
	err     error

	// The inclusion proofs of the group's stamps in the tree it signs,
	// computed while the head is being signed; ready once proved is
	// closed.
	proved   chan struct{}
	proofs   []tlog.RecordProof
	proofErr error
}

// LogSigner turns stamp requests into leaves of a durable Merkle log and
// signs tree heads over them, in a pipeline of three goroutines:
//
//   - the appender takes whatever stamps are queued (up to MaxBatch) and
//     appends them to the log as one batch, one durable transaction;
//   - the signer signs the head of the tree that ends with the latest
//     appended batch, covering every batch appended since its previous
//     signature (up to MaxBatch stamps); if an append is in progress
//     when it is ready, it waits for it, up to appendWait;
//   - the inclusion proofs of the stamps in that tree are computed
//     while it is being signed, and the deliverer answers the stamps
//     once both are done.
//
// So while one tree head is being signed, the next stamps are already
// being made durable, and the proofs and replies of the previous head
// are being sent. A lone request waits for one fsync and one signature;
// under load the signing cost is spread over the stamps that arrive
// during one signature. A reply is sent only after its leaf is durable
// and a signed tree head covers it. Signed heads strictly increase in
// size and time.
type LogSigner struct {
	log   *merklelog.Log
	key   *rsa.PrivateKey
	self  identity.Entry
	now   func() time.Time
	queue chan *logRequest
	head  atomic.Pointer[protocol.SignedTreeHead]

	// peerStrs caches the base58 strings of the requesters' peer IDs and
	// of ours; only the appender uses it.
	peerStrs map[peer.ID]string

	// sign signs a tree head: SignTreeHead, except in tests.
	sign func(*rsa.PrivateKey, *protocol.TreeHead) (*protocol.SignedTreeHead, error)

	// Appended batches waiting for a signer; guarded by pmu.
	pmu         sync.Mutex
	pcond       *sync.Cond
	pending     []*appended
	pendingLen  int  // stamps in pending
	appendsDone bool // the appender has stopped
	// appending is closed when the append in progress ends; nil between
	// appends. A signer waits up to appendWait for it.
	appending  chan struct{}
	appendWait time.Duration
	// While a head is being signed, the stamps that arrive can only make
	// the next head: the appender collects them until shortly before the
	// signature is expected to end, then appends them at once, instead
	// of appending every few stamps. signEnd is when the signature in
	// progress should end (Unix ns, 0: none), from signDur, an average;
	// signEnded gets a token when a signature ends.
	signEnd   atomic.Int64
	signDur   atomic.Int64
	signEnded chan struct{}
	appendDur time.Duration // average append time; appender only
	signed    chan *signedGroup

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	stopped chan struct{}
}

// NewLogSigner starts signing for the server self on log. now may be nil.
func NewLogSigner(log *merklelog.Log, key *rsa.PrivateKey, self identity.Entry, now func() time.Time) (*LogSigner, error) {
	return newLogSigner(log, key, self, now, treeHeadSigner(key), 1, appendWait)
}

// newLogSigner starts a signer with signers goroutines signing tree heads
// (each takes every batch appended while the others are busy), which wait
// up to wait for an append in progress.
func newLogSigner(log *merklelog.Log, key *rsa.PrivateKey, self identity.Entry, now func() time.Time, sign func(*rsa.PrivateKey, *protocol.TreeHead) (*protocol.SignedTreeHead, error), signers int, wait time.Duration) (*LogSigner, error) {
	if now == nil {
		now = time.Now
	}
	s := &LogSigner{
		log: log, key: key, self: self, now: now, sign: sign, appendWait: wait,
		peerStrs:  map[peer.ID]string{},
		queue:     make(chan *logRequest, MaxBatch),
		signed:    make(chan *signedGroup, 4),
		signEnded: make(chan struct{}, 1),
		stopped:   make(chan struct{}),
	}
	s.pcond = sync.NewCond(&s.pmu)
	if size, root, t, err := log.Root(); err != nil {
		return nil, err
	} else if size > 0 {
		sth, err := protocol.SignTreeHead(key, &protocol.TreeHead{ServerID: self.ID, ServerPeer: self.PeerID, Size: size, Root: root, Time: t})
		if err != nil {
			return nil, err
		}
		s.head.Store(sth)
	}
	var signing sync.WaitGroup
	for range max(signers, 1) {
		signing.Go(s.signLoop)
	}
	go s.appendLoop()
	go func() { signing.Wait(); close(s.signed) }()
	go s.deliverLoop()
	return s, nil
}

// Head returns the latest signed tree head, nil while the log is empty.
func (s *LogSigner) Head() *protocol.SignedTreeHead { return s.head.Load() }

// Log is the signer's log.
func (s *LogSigner) Log() *merklelog.Log { return s.log }

// ConsistencyProof proves that the log of size newSize extends the log
// of size oldSize.
func (s *LogSigner) ConsistencyProof(oldSize, newSize uint64) (tlog.TreeProof, error) {
	return s.log.ConsistencyProof(oldSize, newSize)
}

// Submit queues a stamp of hash for requester; done is called once with
// the stamp or an error: from one of the signer's goroutines, or at once
// from the caller's if the signer is closed.
func (s *LogSigner) Submit(requester identity.Entry, hash, nonce []byte, done func(*protocol.LogStamp, error)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		done(nil, ErrSignerClosed)
		return
	}
	s.queue <- &logRequest{requester: requester, hash: hash, nonce: nonce, done: done}
}

// Close finishes the queued stamps and stops the signer. It does not
// close the log.
func (s *LogSigner) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	<-s.stopped
}

// appendLoop appends the queued stamps, batch after batch, and hands the
// batches to the signers. It runs at most MaxBatch stamps ahead of them.
func (s *LogSigner) appendLoop() {
	defer func() {
		s.pmu.Lock()
		s.appendsDone = true
		s.pmu.Unlock()
		s.pcond.Broadcast()
	}()
	for first := range s.queue {
		s.collect()
		batch := append(make([]*logRequest, 0, 64), first)
	drain:
		for len(batch) < MaxBatch {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.pmu.Lock()
		s.appending = make(chan struct{})
		s.pmu.Unlock()
		t0 := time.Now()
		a, err := s.append(batch)
		s.appendDur = average(s.appendDur, time.Since(t0))
		// The batch joins pending before the end of the append is
		// announced, so that a signer waiting for it finds it.
		s.pmu.Lock()
		if err == nil {
			for s.pendingLen >= MaxBatch {
				s.pcond.Wait()
			}
			s.pending = append(s.pending, a)
			s.pendingLen += len(a.reqs)
		}
		close(s.appending)
		s.appending = nil
		s.pmu.Unlock()
		s.pcond.Broadcast()
		if err != nil {
			s.fail(batch, fmt.Errorf("log append failed: %w", err))
		}
	}
}

// collect waits, while a head is being signed, until shortly before the
// signature should end (or ends), so that the stamps arriving meanwhile
// are appended together.
func (s *LogSigner) collect() {
	if s.signEnd.Load() == 0 {
		return
	}
	select {
	case <-s.signEnded: // a stale signal
	default:
	}
	end := s.signEnd.Load() // after the drain: a signature ending now signals
	if end == 0 {
		return
	}
	d := time.Until(time.Unix(0, end).Add(-s.appendDur - coalesceMargin))
	if d <= 0 {
		return
	}
	t := time.NewTimer(min(d, maxCoalesce))
	select {
	case <-t.C:
	case <-s.signEnded:
	}
	t.Stop()
}

// append makes one batch durable.
func (s *LogSigner) append(batch []*logRequest) (*appended, error) {
	a := &appended{reqs: batch, stmts: make([]*protocol.Statement, len(batch)), leaves: make([][]byte, len(batch))}
	serverPeer := s.peerString(s.self.PeerID)
	b, err := s.log.Append(func(first uint64, t time.Time) ([][]byte, error) {
		for i, r := range batch {
			a.stmts[i] = &protocol.Statement{
				HashAlgorithm: protocol.HashAlgorithm,
				DocumentHash:  r.hash,
				Time:          t,
				Serial:        first + uint64(i),
				RequesterID:   r.requester.ID,
				RequesterPeer: r.requester.PeerID,
				ServerID:      s.self.ID,
				ServerPeer:    s.self.PeerID,
				Nonce:         r.nonce,
			}
			a.leaves[i] = a.stmts[i].EncodeWith(protocol.LeafTag, s.peerString(r.requester.PeerID), serverPeer)
		}
		return a.leaves, nil
	}, s.now())
	if err != nil {
		return nil, err
	}
	a.b = b
	return a, nil
}

// peerString is p.String(), remembered for the ids that stamp.
func (s *LogSigner) peerString(p peer.ID) string {
	if str, ok := s.peerStrs[p]; ok {
		return str
	}
	if len(s.peerStrs) >= 4096 {
		clear(s.peerStrs)
	}
	str := p.String()
	s.peerStrs[p] = str
	return str
}

// signLoop signs the head of the tree that ends with the latest appended
// batch, for every batch appended since, until the appender stops and
// nothing is left.
func (s *LogSigner) signLoop() {
	for {
		s.pmu.Lock()
		for len(s.pending) == 0 && !s.appendsDone {
			s.pcond.Wait()
		}
		if len(s.pending) == 0 {
			s.pmu.Unlock()
			return
		}
		// If an append is in progress, its stamps would wait for the
		// next signature; it usually ends well within a signature's time,
		// so wait for it, briefly.
		if ch := s.appending; ch != nil && s.pendingLen < MaxBatch {
			s.pmu.Unlock()
			t := time.NewTimer(s.appendWait)
			select {
			case <-ch:
			case <-t.C:
			}
			t.Stop()
			s.pmu.Lock()
			if len(s.pending) == 0 { // another signer took them
				s.pmu.Unlock()
				continue
			}
		}
		// Take the oldest batches, up to MaxBatch stamps (at least one
		// batch). Batches are appended in order, so they are consecutive.
		n, stamps := 0, 0
		for n < len(s.pending) && (n == 0 || stamps+len(s.pending[n].reqs) <= MaxBatch) {
			stamps += len(s.pending[n].reqs)
			n++
		}
		g := &signedGroup{batches: append([]*appended(nil), s.pending[:n]...)}
		s.pending = append(s.pending[:0], s.pending[n:]...)
		s.pendingLen -= stamps
		s.pmu.Unlock()
		s.pcond.Broadcast()

		last := g.batches[len(g.batches)-1].b
		g.proved = make(chan struct{})
		go func() {
			defer close(g.proved)
			first := g.batches[0].b.FirstIndex
			g.proofs, g.proofErr = s.log.InclusionProofs(first, last.Size-first, last.Size)
		}()
		t0 := time.Now()
		if d := s.signDur.Load(); d > 0 {
			s.signEnd.Store(t0.UnixNano() + d)
		}
		g.sth, g.err = s.sign(s.key, &protocol.TreeHead{ServerID: s.self.ID, ServerPeer: s.self.PeerID, Size: last.Size, Root: last.Root, Time: last.Time})
		s.signEnd.Store(0)
		select {
		case s.signEnded <- struct{}{}:
		default:
		}
		s.signDur.Store(int64(average(time.Duration(s.signDur.Load()), time.Since(t0))))
		if g.err == nil {
			s.storeHead(g.sth)
		}
		s.signed <- g
	}
}

// storeHead makes sth the latest head unless a larger one is there
// already (with several signers, signatures may finish out of order).
func (s *LogSigner) storeHead(sth *protocol.SignedTreeHead) {
	for {
		cur := s.head.Load()
		if cur != nil && cur.Head.Size >= sth.Head.Size {
			return
		}
		if s.head.CompareAndSwap(cur, sth) {
			return
		}
	}
}

// deliverLoop answers the stamps of each signed group; it stops the
// signer once every group is answered.
func (s *LogSigner) deliverLoop() {
	defer close(s.stopped)
	for g := range s.signed {
		s.deliver(g)
	}
}

func (s *LogSigner) deliver(g *signedGroup) {
	var all []*logRequest
	if len(g.batches) == 1 {
		all = g.batches[0].reqs
	} else {
		for _, a := range g.batches {
			all = append(all, a.reqs...)
		}
	}
	<-g.proved
	if g.err != nil {
		s.fail(all, g.err)
		return
	}
	if g.proofErr != nil {
		s.fail(all, fmt.Errorf("inclusion proofs failed: %w", g.proofErr))
		return
	}
	first, proofs := g.batches[0].b.FirstIndex, g.proofs
	for _, a := range g.batches {
		for i, r := range a.reqs {
			r.done(&protocol.LogStamp{Statement: a.stmts[i], Proof: proofs[a.stmts[i].Serial-first], Head: g.sth, Leaf: a.leaves[i]}, nil)
		}
	}
}

func (s *LogSigner) fail(batch []*logRequest, err error) {
	log.Errorw("stamp batch failed", "stamps", len(batch), "err", err)
	for _, r := range batch {
		r.done(nil, err)
	}
}

// treeHeadSigner returns the function a LogSigner signs heads with:
// the two CRT halves of each RSA signature at once (internal/crtsign),
// because every stamp waits for a head's signature, so its latency
// bounds the throughput of a session; the signatures are the bytes
// SignTreeHead would make. A key crtsign does not take falls back to
// SignTreeHead.
func treeHeadSigner(key *rsa.PrivateKey) func(*rsa.PrivateKey, *protocol.TreeHead) (*protocol.SignedTreeHead, error) {
	cs, err := crtsign.New(key)
	if err != nil {
		log.Warnw("signing tree heads with crypto/rsa alone", "reason", err)
		return protocol.SignTreeHead
	}
	return func(_ *rsa.PrivateKey, h *protocol.TreeHead) (*protocol.SignedTreeHead, error) {
		enc := h.Encode()
		digest := sha256.Sum256(enc)
		sig, err := cs.SignSHA256(digest[:])
		if err != nil {
			return nil, fmt.Errorf("failed to sign tree head: %w", err)
		}
		return &protocol.SignedTreeHead{Head: h, Encoded: enc, Signature: sig}, nil
	}
}
