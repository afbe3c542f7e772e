// Package authority is the timestamp authority's log pipeline: it
// appends stamps as leaves of a durable Merkle log and signs tree heads
// over them (PROTOCOL.md §4.1, §5).
//
// Three goroutines, each handing work to the next in order:
//
//   - the appender takes whatever stamps are queued (up to MaxBatch) and
//     appends them as one durable batch, which fixes their serials and
//     time; futures of AddDurable resolve here;
//   - the pacer collects appended batches and decides when a head is worth
//     a signature (see pace.go), then signs the head of the tree that ends
//     with the latest batch it holds;
//   - the deliverer computes the inclusion proofs of each group, and
//     guards its tree (HeadStore.Guard), while its head is being signed,
//     then resolves the group's futures; now and then it saves the
//     latest signed head (HeadStore.SaveHead), after answering.
//
// Because each stage keeps the order it was given, futures resolve in
// the order of Add (those of AddDurable in the order of AddDurable).
package authority

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/crtsign"
	"github.com/tsnode/tsnode/protocol"
)

const (
	// DefaultMaxBatch is the most stamps one head covers (PROTOCOL.md §5).
	DefaultMaxBatch = 4096
	// DefaultMaxWait is the longest a stamp waits for its head to start
	// being signed. With MaxWait > 0, under steady load it sets the cycle
	// of heads: latency grows by about MaxWait/2 and the signing cost per
	// stamp falls to a signature's CPU over the stamps of MaxWait. The
	// default is 0 (a head as soon as the previous one is signed), the
	// lowest latency; 20 ms saved 16% of the CPU at 8,000 stamps/s and
	// 35% at 1,000/s for 4-7 ms more p50 (BenchmarkOpenLoop), a trade an
	// operator chooses with --max-wait.
	DefaultMaxWait = 0
	// signBudget is the signing time a stamp is worth: a head of
	// signature-time/signBudget stamps is signed without waiting longer.
	// It is wall time; the CRT signer uses two cores for it, so a stamp
	// pays about twice this in CPU.
	signBudget = 12 * time.Microsecond
	// quietGap is how long no stamp must arrive, after a signature during
	// which none arrived, to conclude that every requester is waiting for
	// an answer (a closed loop, or a lone stamp): waiting longer would only
	// add latency.
	quietGap = 500 * time.Microsecond
	// durableCover bounds how long leaves that nobody waits for (those of
	// AddDurable) stay outside a signed head.
	durableCover = time.Second
	// maxCollect bounds how long the appender gathers the stamps that
	// arrive during a signature.
	maxCollect = 50 * time.Millisecond
	// appendLinger bounds how long the appender gathers stamps for one
	// append when they arrive densely.
	appendLinger = 5 * time.Millisecond
	// rateWindow is the time constant of the arrival-rate estimate.
	rateWindow = 100 * time.Millisecond
	// appendedDepth is how many appended batches may wait for the pacer
	// (while it signs) before the appender blocks.
	appendedDepth = 64
	// DefaultClockTolerance is how far the time of a stamp may run ahead
	// of the clock: batch times strictly increase, so a clock that steps
	// back a little is covered by last+1ns; one that is further behind
	// the last issued time stops stamping (ErrClockBehind).
	DefaultClockTolerance = 2 * time.Second
	// clockBehindReminder spaces the error lines of a clock that stays
	// behind.
	clockBehindReminder = time.Minute
)

var log = logging.Logger("tsnode/authority")

var (
	// ErrClosed is returned for stamps added after Close.
	ErrClosed = errors.New("authority: closed")
	// ErrClockBehind is returned for stamps refused because the clock
	// reads earlier than the last issued time by more than the tolerance:
	// issuing them would date them ahead of the clock.
	ErrClockBehind = errors.New("authority: the clock is behind the last issued time")
)

// Entry is one stamp to make.
type Entry struct {
	Requester   identity.Entry
	Hash, Nonce []byte
	// RFC3161, if set, makes the leaf an RFC 3161 token's (PROTOCOL.md
	// §14.2) instead of a statement: the authority fills in its Time,
	// Serial, ServerID and ServerPeer, and the Stamp carries it in
	// RFC3161 (Statement is nil). Requester, Hash and Nonce are not used.
	RFC3161 *protocol.TSALeaf
}

// Stamp is one stamp of the log: its statement (a leaf), and for a full
// stamp the proof that the leaf is in the tree of Head.
type Stamp = protocol.LogStamp

// Future blocks until its stamp is answered, then returns it or why not.
type Future func() (*Stamp, error)

// Option configures an Authority.
type Option func(*Authority)

// WithMaxBatch bounds the stamps one head covers (default DefaultMaxBatch).
func WithMaxBatch(n int) Option { return func(a *Authority) { a.maxBatch = max(n, 1) } }

// WithMaxWait bounds how long a stamp waits for its head to start being
// signed (default DefaultMaxWait).
func WithMaxWait(d time.Duration) Option { return func(a *Authority) { a.maxWait = max(d, 0) } }

// WithClock sets the clock that stamps get their times from (default
// time.Now). Pacing uses the monotonic clock, so a clock stuck or stepped
// back does not hold heads back.
func WithClock(now func() time.Time) Option {
	return func(a *Authority) {
		if now != nil {
			a.now = now
		}
	}
}

// WithClockTolerance sets how far a stamp's time may run ahead of the
// clock (default DefaultClockTolerance); see ErrClockBehind.
func WithClockTolerance(d time.Duration) Option {
	return func(a *Authority) { a.tolerance = max(d, 0) }
}

// Metrics is told what the pipeline does (--metrics); its methods must be
// quick, since the pipeline's goroutines call them.
type Metrics interface {
	// Appended: one batch of stamps appended durably, in d (fsync included).
	Appended(stamps int, d time.Duration)
	// HeadSigned: a tree head over stamps new stamps, signed in d.
	HeadSigned(stamps int, d time.Duration)
	// HeadSaved: a head's tree guarded by the head store in d (the
	// save on the critical path; HeadStore.Guard).
	HeadSaved(d time.Duration)
}

type noMetrics struct{}

func (noMetrics) Appended(int, time.Duration)   {}
func (noMetrics) HeadSigned(int, time.Duration) {}
func (noMetrics) HeadSaved(time.Duration)       {}

// WithMetrics tells m what the pipeline does.
func WithMetrics(m Metrics) Option {
	return func(a *Authority) {
		if m != nil {
			a.metrics = m
		}
	}
}

// request is one added stamp on its way through the pipeline.
type request struct {
	ctx     context.Context
	e       Entry
	durable bool      // AddDurable: resolved once appended
	added   time.Time // monotonic, for pacing
	done    chan struct{}
	st      *Stamp
	err     error

	// Set by the appender.
	stmt   *protocol.Statement
	tsa    *protocol.TSALeaf // for an RFC 3161 entry, instead of stmt
	serial uint64
	leaf   []byte
	fail   error // dropped or not appended: the answer
}

func (r *request) resolve(st *Stamp, err error) {
	r.st, r.err = st, err
	close(r.done)
}

func (r *request) future() Future {
	return func() (*Stamp, error) { <-r.done; return r.st, r.err }
}

// Authority appends stamps to a log and signs its tree heads.
type Authority struct {
	log       Log
	signer    crypto.Signer
	self      identity.Entry
	now       func() time.Time
	tolerance time.Duration
	maxBatch  int
	maxWait   time.Duration
	store     HeadStore // nil: nothing is guarded or saved
	saveEvery time.Duration
	metrics   Metrics
	// onlineLifetime is each online key's (0: the identity key signs
	// heads); online rotates them.
	onlineLifetime time.Duration
	online         *onlineKeys
	// hook, in tests, is called at the points of delivery a crash can
	// fall between (crash_test.go).
	hook func(point string)

	queue    chan *request
	appended chan *batch // appender → pacer
	groups   chan *group // pacer → deliverer
	head     atomic.Pointer[protocol.SignedTreeHead]

	// Adds and the last Add's monotonic time in ns since start, read by
	// the pacer to tell whether stamps still arrive.
	added   atomic.Int64
	lastAdd atomic.Int64
	start   time.Time
	health  health

	peerStrs  map[peer.ID]string // appender only
	clock     clockState         // appender only
	worthHint atomic.Int64       // the pacer's K, for the appender
	// signEnd is when the signature in progress should end (Unix ns, 0:
	// none); signEnded gets a token when one ends.
	signEnd   atomic.Int64
	signEnded chan struct{}
	// refresh takes Refresh's requests; floor (Unix ns) is the time of
	// the latest fresh head, before which no batch is dated.
	refresh chan *refreshReq
	floor   atomic.Int64
	// lastSigned is the latest head the pacer signed (pacer only, after
	// New): what a fresh head re-signs.
	lastSigned *protocol.SignedTreeHead
	// Deliverer only, after New: the tree last guarded, the head last
	// saved and when.
	guarded treeID
	saved   *protocol.SignedTreeHead
	savedAt time.Time

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	stopped chan struct{}
}

// New starts an authority for the server self on log (the bbolt
// *merklelog.Log, or any Log), signing with signer, whose public key
// must be self's. On a non-empty log it first signs a head for the
// stored size, root and last batch time.
func New(log Log, signer crypto.Signer, self identity.Entry, opts ...Option) (*Authority, error) {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || self.PublicKey == nil || !pub.Equal(self.PublicKey) {
		return nil, fmt.Errorf("authority: the signer's key is not the key of %s", self.ID)
	}
	a := &Authority{
		log: log, signer: signer, self: self, now: time.Now, tolerance: DefaultClockTolerance,
		maxBatch: DefaultMaxBatch, maxWait: DefaultMaxWait, metrics: noMetrics{},
		onlineLifetime: DefaultOnlineKeyLifetime,
		start:          time.Now(),
		saveEvery:      headSaveInterval,
		stopped:        make(chan struct{}),
		peerStrs:       map[peer.ID]string{},
		signEnded:      make(chan struct{}, 1),
		refresh:        make(chan *refreshReq),
	}
	for _, o := range opts {
		o(a)
	}
	if a.onlineLifetime > 0 {
		a.online = &onlineKeys{identity: signer, self: self, lifetime: a.onlineLifetime, now: a.now}
	}
	a.queue = make(chan *request, a.maxBatch)
	a.appended = make(chan *batch, appendedDepth)
	a.groups = make(chan *group, 4)
	size, root, t, err := log.Root()
	if err != nil {
		return nil, err
	}
	var signTime time.Duration
	if size > 0 {
		// A clock behind the log pauses stamping (logged) but not the
		// start: stamping resumes once it catches up, and the log stays
		// readable meanwhile.
		_ = a.checkClock(a.now())
		if err := a.guard(size, root, t); err != nil {
			return nil, err
		}
		t0 := time.Now()
		sth, err := a.sign(size, root, t)
		if err != nil {
			return nil, fmt.Errorf("authority: signing the head of the stored log: %w", err)
		}
		signTime = time.Since(t0)
		if err := a.saveHead(sth); err != nil {
			return nil, err
		}
		a.head.Store(sth)
		a.lastSigned = sth
	}
	p := newPacer(a.maxWait, a.maxBatch, signTime)
	a.worthHint.Store(int64(p.worth()))
	go a.appendLoop()
	go a.paceLoop(p)
	go a.deliverLoop()
	return a, nil
}

// Add queues a full stamp: its future resolves once its leaf is durable
// and a signed head covers it, with the inclusion proof. If ctx is done
// before the stamp is appended, the stamp is dropped and the future
// returns ctx.Err(); once appended, the stamp is logged and answered
// whatever ctx says.
func (a *Authority) Add(ctx context.Context, e Entry) Future { return a.add(ctx, e, false).future() }

// AddDurable queues a stamp for the one-shot (v1) flow: its future
// resolves as soon as the leaf is durable, with the statement (serial
// and time) and leaf but no head or proof; the leaf is covered by a later
// head all the same.
func (a *Authority) AddDurable(ctx context.Context, e Entry) Future {
	return a.add(ctx, e, true).future()
}

func (a *Authority) add(ctx context.Context, e Entry, durable bool) *request {
	r := &request{ctx: ctx, e: e, durable: durable, done: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		r.resolve(nil, err)
		return r
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		r.resolve(nil, ErrClosed)
		return r
	}
	r.added = time.Now()
	select {
	case a.queue <- r:
		at := int64(r.added.Sub(a.start))
		a.lastAdd.Store(at)
		if a.added.Add(1)-1 == a.health.answered.Load() {
			a.health.busySince.Store(at) // the pipeline was idle
		}
	case <-ctx.Done(): // the queue is full; never queued
		r.resolve(nil, ctx.Err())
	}
	return r
}

// Head returns the latest signed tree head, nil while the log is empty.
func (a *Authority) Head() *protocol.SignedTreeHead { return a.head.Load() }

// ConsistencyProof returns the proof that the tree of size new extends
// the tree of size old (1 <= old <= new <= the log's size).
func (a *Authority) ConsistencyProof(old, new uint64) (tlog.TreeProof, error) {
	return a.log.ConsistencyProof(old, new)
}

// Leaf returns the leaf at index (index < the log's size).
func (a *Authority) Leaf(index uint64) ([]byte, error) { return a.log.Leaf(index) }

// InclusionProof returns the proof that the leaf at index is in the tree
// of the given size (index < size <= the log's size).
func (a *Authority) InclusionProof(index, size uint64) (tlog.RecordProof, error) {
	return a.log.InclusionProof(index, size)
}

// Close finishes the stamps already added, then stops. It does not close
// the log.
func (a *Authority) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	<-a.stopped
	return nil
}

// sign signs the head of the tree of the given size.
func (a *Authority) sign(size uint64, root tlog.Hash, t time.Time) (*protocol.SignedTreeHead, error) {
	h := &protocol.TreeHead{ServerID: a.self.ID, ServerPeer: a.self.PeerID, Size: size, Root: root, Time: t}
	enc := h.Encode()
	var sig []byte
	var err error
	if a.online != nil {
		sig, err = a.online.signHead(enc, t)
	} else {
		sig, err = signIdentity(a.signer, enc)
	}
	if err != nil {
		return nil, err
	}
	return &protocol.SignedTreeHead{Head: h, Encoded: enc, Signature: sig}, nil
}

// SignerFor is the crypto.Signer an authority with the private key key
// signs heads with: both RSA-CRT halves at once (internal/crtsign), since
// every stamp waits for a head's signature; crypto/rsa itself for a key
// crtsign does not take.
func SignerFor(key *rsa.PrivateKey) crypto.Signer {
	s, err := crtsign.New(key)
	if err != nil {
		log.Warnw("signing tree heads with crypto/rsa alone", "reason", err)
		return key
	}
	return s
}
