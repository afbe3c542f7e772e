package protocol

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"tsnode/identity"
	"tsnode/internal/merklelog"
)

// MaxBatch bounds how many stamps one tree head signs.
const MaxBatch = 4096

// ErrSignerClosed is returned for stamps submitted after Close.
var ErrSignerClosed = errors.New("log signer closed")

// LogStamp is one stamp of the log: its statement (a leaf), the proof
// that the leaf is in the tree, and the signed head of that tree.
type LogStamp struct {
	Statement *Statement
	Proof     tlog.RecordProof
	Head      *SignedTreeHead
}

// Receipt returns the v2 receipt of the stamp.
func (s *LogStamp) Receipt() *Receipt { return NewLogReceipt(s.Statement, s.Proof, s.Head) }

// logRequest is a stamp waiting for its batch.
type logRequest struct {
	requester identity.Entry
	hash      []byte
	nonce     []byte
	done      func(*LogStamp, error)
}

// LogSigner turns stamp requests into leaves of a durable Merkle log and
// signs one tree head per batch. A batch is whatever queued while the
// previous one was being written and signed, so a lone request waits for
// one fsync and one signature, and under load the signing cost is spread
// over up to MaxBatch stamps. A reply is sent only after its leaf is
// durable.
type LogSigner struct {
	log   *merklelog.Log
	key   *rsa.PrivateKey
	self  identity.Entry
	now   func() time.Time
	queue chan *logRequest
	head  atomic.Pointer[SignedTreeHead]

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	stopped chan struct{}
}

// NewLogSigner starts signing for the server self on log. now may be nil.
func NewLogSigner(log *merklelog.Log, key *rsa.PrivateKey, self identity.Entry, now func() time.Time) (*LogSigner, error) {
	if now == nil {
		now = time.Now
	}
	s := &LogSigner{log: log, key: key, self: self, now: now, queue: make(chan *logRequest, MaxBatch), stopped: make(chan struct{})}
	if size, root, t, err := log.Root(); err != nil {
		return nil, err
	} else if size > 0 {
		sth, err := SignTreeHead(key, &TreeHead{ServerID: self.ID, ServerPeer: self.PeerID, Size: size, Root: root, Time: t})
		if err != nil {
			return nil, err
		}
		s.head.Store(sth)
	}
	go s.run()
	return s, nil
}

// Head returns the latest signed tree head, nil while the log is empty.
func (s *LogSigner) Head() *SignedTreeHead { return s.head.Load() }

// Log is the signer's log.
func (s *LogSigner) Log() *merklelog.Log { return s.log }

// Submit queues a stamp of hash for requester; done is called once with
// the stamp or an error: from the signer's goroutine, or at once from the
// caller's if the signer is closed.
func (s *LogSigner) Submit(requester identity.Entry, hash, nonce []byte, done func(*LogStamp, error)) {
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

func (s *LogSigner) run() {
	defer close(s.stopped)
	batch := make([]*logRequest, 0, MaxBatch)
	for first := range s.queue {
		batch = append(batch[:0], first)
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
		s.sign(batch)
	}
}

// sign appends, signs and answers one batch.
func (s *LogSigner) sign(batch []*logRequest) {
	stmts := make([]*Statement, len(batch))
	b, err := s.log.Append(func(first uint64, t time.Time) ([][]byte, error) {
		leaves := make([][]byte, len(batch))
		for i, r := range batch {
			stmts[i] = &Statement{
				HashAlgorithm: HashAlgorithm,
				DocumentHash:  r.hash,
				Time:          t,
				Serial:        first + uint64(i),
				RequesterID:   r.requester.ID,
				RequesterPeer: r.requester.PeerID,
				ServerID:      s.self.ID,
				ServerPeer:    s.self.PeerID,
				Nonce:         r.nonce,
			}
			leaves[i] = stmts[i].EncodeLeaf()
		}
		return leaves, nil
	}, s.now())
	if err != nil {
		s.fail(batch, fmt.Errorf("log append failed: %w", err))
		return
	}
	sth, err := SignTreeHead(s.key, &TreeHead{ServerID: s.self.ID, ServerPeer: s.self.PeerID, Size: b.Size, Root: b.Root, Time: b.Time})
	if err != nil {
		s.fail(batch, err)
		return
	}
	s.head.Store(sth)
	proofs, err := s.log.InclusionProofs(b.FirstIndex, uint64(len(batch)), b.Size)
	if err != nil {
		s.fail(batch, fmt.Errorf("inclusion proofs failed: %w", err))
		return
	}
	for i, r := range batch {
		r.done(&LogStamp{Statement: stmts[i], Proof: proofs[i], Head: sth}, nil)
	}
}

func (s *LogSigner) fail(batch []*logRequest, err error) {
	log.Errorw("stamp batch failed", "stamps", len(batch), "err", err)
	for _, r := range batch {
		r.done(nil, err)
	}
}
