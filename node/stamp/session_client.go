package stamp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/tsnode/tsnode/identity"
)

// ErrSessionClosed is returned for stamps asked of a closed session.
var ErrSessionClosed = errors.New("stamp session closed")

// Session is a requester's stamp session: safe for concurrent use, with
// any number of stamps in flight.
type Session struct {
	stream network.Stream
	self   identity.Entry
	server identity.Entry
	trust  *protocol.Trust
	cache  *protocol.HeadCache
	in     *protocol.SessionCipher
	// Used by the read loop only: the expected parties of every leaf,
	// and the last tree head that passed every check.
	known    *protocol.KnownParties
	lastHead *protocol.SignedTreeHead
	sends    chan *sessionCall

	mu      sync.Mutex
	pending map[uint64]*sessionCall
	nextID  uint64
	err     error // set once the session failed or closed
	closing chan struct{}
	once    sync.Once
	done    chan struct{}
}

type sessionCall struct {
	req    *protocol.SessionRequest
	result chan sessionResult
	sent   atomic.Bool // set before the write loop writes the request
}

type sessionResult struct {
	stamp *protocol.LogStamp
	err   error
}

// OpenSession runs the key exchange with server as self. Only tree heads
// that trust accepts count, so server must be one of its authorities.
// cache (may be nil) lets sessions share verified tree heads.
func OpenSession(ctx context.Context, h host.Host, key *rsa.PrivateKey, self, server identity.Entry, trust *protocol.Trust, cache *protocol.HeadCache) (*Session, error) {
	if err := trust.CheckAuthority(server.ID); err != nil {
		return nil, err
	}
	requestKey, err := protocol.NewSessionKey()
	if err != nil {
		return nil, err
	}
	hello, err := protocol.SealSessionHello(server.PublicKey, self.ID, requestKey)
	if err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, protocol.SessionHelloTimeout)
	defer cancel()
	s, err := h.NewStream(ctx, server.PeerID, protocol.SessionProtocolID)
	if err != nil {
		return nil, &streamError{err: fmt.Errorf("failed to open stamp session with server %s (%s): %w", server.ID, server.PeerID, err)}
	}
	fail := func(err error) (*Session, error) {
		s.Reset()
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(deadline)
	// The hello's reads and writes wait for the stream's deadline only;
	// a caller that gives up (a signal, Requester.Close) must not wait
	// out the rest of the hello timeout for a server that never answers.
	abort := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer abort()
	if err := protocol.WriteFrame(s, hello); err != nil {
		return fail(helloError(parent, fmt.Errorf("failed to send session hello to %s: %w", server.ID, err)))
	}
	r := bufio.NewReaderSize(s, sessionReadBuffer)
	frame, err := protocol.ReadFrame(r, protocol.MaxSessionHelloSize)
	if err != nil {
		return fail(helloError(parent, fmt.Errorf("no session answer from %s: %w", server.ID, err)))
	}
	if !abort() {
		return fail(helloError(parent, context.Cause(ctx))) // the answer came as the hello ended
	}
	replyKey, err := protocol.OpenSessionAccept(key, frame, server.ID)
	if err != nil {
		return fail(err)
	}
	_ = s.SetDeadline(time.Time{})
	out, _ := protocol.NewSessionCipher(requestKey, protocol.SessionRequestTag)
	in, _ := protocol.NewSessionCipher(replyKey, protocol.SessionReplyTag)
	if cache == nil {
		cache = protocol.NewHeadCache(1024)
	}
	sess := &Session{
		stream: s, self: self, server: server, trust: trust, cache: cache, in: in, known: protocol.NewKnownParties(self, server),
		sends: make(chan *sessionCall, protocol.MaxInFlight), pending: map[uint64]*sessionCall{},
		closing: make(chan struct{}), done: make(chan struct{}),
	}
	go sess.writeLoop(out)
	go sess.readLoop(r)
	return sess, nil
}

// Stamp asks for documentHash to be stamped and returns the stamp once
// its leaf, inclusion proof and tree head signature have been checked.
func (s *Session) Stamp(ctx context.Context, documentHash []byte) (*protocol.LogStamp, error) {
	if len(documentHash) != protocol.HashSize {
		return nil, fmt.Errorf("document hash is %d bytes, want %d", len(documentHash), protocol.HashSize)
	}
	nonce := make([]byte, protocol.NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	call := &sessionCall{result: make(chan sessionResult, 1)}
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		// Never sent on this session: a new one may ask safely.
		return nil, &streamError{err: err}
	}
	call.req = &protocol.SessionRequest{ID: s.nextID, Hash: documentHash, Nonce: nonce}
	s.nextID++
	s.pending[call.req.ID] = call
	s.mu.Unlock()

	select {
	case s.sends <- call:
	case <-s.closing:
		// The read loop fails every pending call once the session ends.
	case <-ctx.Done():
		s.forget(call.req.ID)
		return nil, ctx.Err()
	}
	select {
	case res := <-call.result:
		if se, ok := res.err.(*streamError); ok {
			return nil, &streamError{err: se.err, sent: call.sent.Load()}
		}
		return res.stamp, res.err
	case <-ctx.Done():
		s.forget(call.req.ID)
		return nil, ctx.Err()
	}
}

func (s *Session) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// Err is why the session ended, or nil while it is open.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// closeGrace is how long Close waits for the server to end its side of
// a session with no stamp in flight before it resets the stream: a
// healthy server ends it at once, and one that hangs must not hold up a
// requester that is stopping.
const closeGrace = 500 * time.Millisecond

// Close ends the session after the replies still awaited arrive (for up
// to the hello timeout); with none awaited, it waits closeGrace at most.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.err == nil {
		s.err = ErrSessionClosed
	}
	wait := protocol.SessionHelloTimeout
	if len(s.pending) == 0 {
		wait = closeGrace
	}
	s.mu.Unlock()
	s.once.Do(func() { close(s.closing) })
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.stream.Reset()
	}
	return nil
}

// writeLoop seals requests in order and flushes when none is waiting.
// Requests tend to come in bursts (callers answered by one batch of
// replies ask again), so before flushing it yields once to let the rest
// of a burst join the same write.
func (s *Session) writeLoop(out *protocol.SessionCipher) {
	w := bufio.NewWriterSize(s.stream, sessionWriteBuffer)
	write := func(c *sessionCall) bool {
		c.sent.Store(true)
		err := protocol.WriteFrame(w, out.Seal(c.req.Encode()))
		if err == nil && len(s.sends) == 0 {
			runtime.Gosched()
			if len(s.sends) == 0 {
				err = w.Flush()
			}
		}
		if err != nil {
			s.fail(&streamError{err: fmt.Errorf("failed to send to server %s: %w", s.server.ID, err)})
			s.stream.Reset()
			return false
		}
		return true
	}
	for {
		select {
		case c := <-s.sends:
			if !write(c) {
				return
			}
		case <-s.closing:
			// Send what was queued before the close, then end our side.
			for {
				select {
				case c := <-s.sends:
					if !write(c) {
						return
					}
				default:
					_ = w.Flush()
					_ = s.stream.CloseWrite()
					return
				}
			}
		}
	}
}

// helloError is a failed key exchange: the caller's own cancellation
// when it gave up, else a stream failure (a hello timeout included)
// worth another try.
func helloError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return &streamError{err: err}
}

// readLoop matches replies to requests and checks each one.
func (s *Session) readLoop(r *bufio.Reader) {
	defer close(s.done)
	for {
		frame, err := protocol.ReadFrame(r, protocol.MaxSessionReplySize)
		if err != nil {
			s.fail(&streamError{err: fmt.Errorf("session with server %s ended: %w", s.server.ID, err)})
			return
		}
		pt, err := s.in.Open(frame)
		if err == nil {
			var rep *protocol.SessionReply
			if rep, err = protocol.ParseSessionReply(pt); err == nil {
				err = s.deliver(rep)
			}
		}
		if err != nil {
			s.fail(err)
			s.stream.Reset()
			return
		}
	}
}

func (s *Session) deliver(rep *protocol.SessionReply) error {
	s.mu.Lock()
	call, ok := s.pending[rep.ID]
	delete(s.pending, rep.ID)
	s.mu.Unlock()
	if rep.Status == protocol.StatusShuttingDown {
		// The server's shutdown notice (or a stamp refused for it): it
		// reads no more requests and has answered those it read, so the
		// ones still pending will not be answered, and none can be asked.
		err := protocol.Refusal(string(s.server.ID), []byte(rep.Status), []byte(rep.Message))
		if ok {
			call.result <- sessionResult{err: err}
		}
		s.fail(err)
		return nil
	}
	if !ok {
		return nil // the caller gave up on it
	}
	if rep.Status != protocol.StatusOK {
		call.result <- sessionResult{err: protocol.Refusal(string(s.server.ID), []byte(rep.Status), []byte(rep.Message))}
		return nil
	}
	st, err := s.check(call.req, rep)
	call.result <- sessionResult{stamp: st, err: err}
	return nil
}

// check verifies a reply against its request: the leaf is our hash and
// nonce, for us, by the server we asked; the tree head is that server's,
// signed by a trusted key; the proof puts the leaf in that tree.
func (s *Session) check(req *protocol.SessionRequest, rep *protocol.SessionReply) (*protocol.LogStamp, error) {
	st, err := protocol.ParseLeafKnown(rep.Leaf, s.known)
	if err != nil {
		return nil, err
	}
	if err := protocol.CheckAnswer(st, req.Hash, req.Nonce, s.self, s.server); err != nil {
		return nil, err
	}
	sth, err := s.checkHead(rep.Head, rep.Sig)
	if err != nil {
		return nil, err
	}
	if err := protocol.CheckInclusion(rep.Leaf, st, sth.Head, rep.Proof); err != nil {
		return nil, err
	}
	return &protocol.LogStamp{Statement: st, Proof: rep.Proof, Head: sth}, nil
}

// checkHead checks a reply's tree head. The replies of one batch carry
// the same head: one that is byte-identical to the last head that passed
// is that head, without parsing or verifying again.
func (s *Session) checkHead(encoded, sig []byte) (*protocol.SignedTreeHead, error) {
	if h := s.lastHead; h != nil && bytes.Equal(encoded, h.Encoded) && bytes.Equal(sig, h.Signature) {
		return h, nil
	}
	sth, err := s.trust.CheckServerHead(bytes.Clone(encoded), bytes.Clone(sig), s.server, s.cache)
	if err != nil {
		return nil, err
	}
	s.lastHead = sth
	return sth, nil
}

// fail ends the session with err and fails every pending stamp.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	pending := s.pending
	s.pending = map[uint64]*sessionCall{}
	s.mu.Unlock()
	s.once.Do(func() { close(s.closing) })
	for _, c := range pending {
		c.result <- sessionResult{err: err}
	}
}
