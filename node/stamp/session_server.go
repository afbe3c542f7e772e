package stamp

import (
	"bufio"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/zap/zapcore"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/drain"
	"github.com/tsnode/tsnode/internal/p2pstream"
)

// sessionHandler serves stamp sessions on the authority's log.
type sessionHandler struct {
	Key     *rsa.PrivateKey
	Self    identity.Entry
	Dir     identity.Peers
	Log     *authority.Authority
	Drain   *drain.Tracker
	Metrics Metrics
}

const (
	sessionReadBuffer  = 4 << 10
	sessionWriteBuffer = 32 << 10
)

// sessionEnd is why the server stopped reading a session.
type sessionEnd int

const (
	endClosed sessionEnd = iota // the requester closed its side
	// endAbandoned: the stream ended under the read — the requester's
	// reset, its close in the middle of a frame, the connection lost, a
	// network error, or the session idle for SessionIdleTimeout (§7.7).
	// Nothing the requester sent was wrong.
	endAbandoned
	endViolation // §7.7: a frame too long, badly framed, not opening or malformed
	endDraining  // the server is shutting down
)

// Session ends, as Metrics.SessionClosed names them.
const (
	EndClosed    = "closed"
	EndAbandoned = "abandoned"
	EndViolation = "violation"
	EndDraining  = "draining"
)

func (e sessionEnd) String() string {
	switch e {
	case endClosed:
		return EndClosed
	case endAbandoned:
		return EndAbandoned
	case endViolation:
		return EndViolation
	}
	return EndDraining
}

// Handler returns the session stream handler.
func (srv *sessionHandler) Handler() network.StreamHandler {
	return func(s network.Stream) {
		remote := s.Conn().RemotePeer()
		release, err := p2pstream.Prepare(s, protocol.SessionServiceName, sessionReadBuffer+sessionWriteBuffer+protocol.MaxSessionReplySize)
		if err != nil {
			log.Debugw("session refused", "peer", remote, "err", err)
			s.Reset()
			return
		}
		defer release()
		entered := srv.Drain.Enter()
		if entered {
			defer srv.Drain.Leave()
		}
		r := bufio.NewReaderSize(s, sessionReadBuffer)
		requester, in, out, err := srv.accept(s, r, remote, entered)
		if err != nil {
			log.Warnw("session not opened", "peer", remote, "err", err)
			return
		}
		start := time.Now()
		srv.Metrics.SessionOpened()
		log.Infow("session opened", "peer", remote, "requester", requester.ID)
		end, stamps, readErr, writeErr := srv.serve(s, r, requester, in, out)
		closed := []any{"peer", remote, "requester", requester.ID, "stamps", stamps,
			"duration", time.Since(start).Round(time.Millisecond).String(), "end", end.String()}
		if end == endAbandoned {
			// A reset, a lost connection or an idle requester is the
			// network's or the requester's business, not a fault: one
			// INFO line, as the verifier's "relay abandoned".
			closed = append(closed, "err", readErr)
		}
		log.Infow("session closed", closed...)
		if end == endViolation {
			srv.Metrics.Refused(protocol.StatusBadRequest)
			log.Warnw("session: protocol violation; closing after the replies", "peer", remote, "err", readErr)
		}
		if writeErr != nil {
			log.Warnw("session: writing replies failed; resetting stream", "peer", remote, "err", writeErr)
		}
		// Counted once logged, so that whoever sees the count sees the
		// lines too.
		srv.Metrics.SessionClosed(end.String())
		switch {
		case writeErr != nil:
			s.Reset()
		case end == endClosed:
			s.Close()
		default:
			linger(s, r)
		}
	}
}

// linger ends a session the server stopped reading, after its last reply:
// it closes the server's side, then waits up to SessionLinger for the
// requester to close its own (discarding what it still sends) and closes
// the stream; a requester that does not close gets a reset. Resetting at
// once could discard replies the requester has not read yet.
func linger(s network.Stream, r io.Reader) {
	_ = s.CloseWrite()
	_ = s.SetReadDeadline(time.Now().Add(protocol.SessionLinger))
	if _, err := io.Copy(io.Discard, r); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// accept runs the key exchange. On failure the stream is already closed
// or reset.
// A session that arrives while the server drains (!admit) is refused.
func (srv *sessionHandler) accept(s network.Stream, r *bufio.Reader, remote peer.ID, admit bool) (identity.Entry, *protocol.SessionCipher, *protocol.SessionCipher, error) {
	_ = s.SetDeadline(time.Now().Add(protocol.SessionHelloTimeout))
	frame, err := protocol.ReadFrame(r, protocol.MaxSessionHelloSize)
	if err != nil {
		s.Reset()
		return identity.Entry{}, nil, nil, err
	}
	refuse := func(status, msg string) (identity.Entry, *protocol.SessionCipher, *protocol.SessionCipher, error) {
		srv.Metrics.Refused(status)
		_ = protocol.WriteFrame(s, protocol.EncodeSessionRefusal(status, msg))
		s.Close()
		return identity.Entry{}, nil, nil, fmt.Errorf("%s: %s", status, msg)
	}
	if !admit {
		return refuse(protocol.StatusShuttingDown, "the server is shutting down")
	}
	id, requestKey, err := protocol.OpenSessionHello(srv.Key, frame)
	if err != nil {
		return refuse(protocol.StatusBadRequest, err.Error())
	}
	requester, err := srv.Dir.Lookup(id)
	if err != nil {
		return refuse(protocol.StatusUnknownID, err.Error())
	}
	if requester.PeerID != remote {
		return refuse(protocol.StatusPeerMismatch, fmt.Sprintf("session claims id %q (peer %s) but was opened by peer %s", id, requester.PeerID, remote))
	}
	replyKey, err := protocol.NewSessionKey()
	if err != nil {
		return refuse(protocol.StatusInternal, "no randomness")
	}
	accept, err := protocol.SealSessionAccept(requester.PublicKey, replyKey)
	if err != nil {
		return refuse(protocol.StatusInternal, "sealing the session key failed")
	}
	if err := protocol.WriteFrame(s, accept); err != nil {
		s.Reset()
		return identity.Entry{}, nil, nil, err
	}
	in, _ := protocol.NewSessionCipher(requestKey, protocol.SessionRequestTag)
	out, _ := protocol.NewSessionCipher(replyKey, protocol.SessionReplyTag)
	_ = s.SetDeadline(time.Time{})
	return requester, in, out, nil
}

// answer is a stamp of the session on its way through the log.
type answer struct {
	id     uint64
	read   time.Time
	future authority.Future
}

// serve reads requests until the requester closes its side, the stream
// ends under it (abandoned), a violation, or the server drains; adds them to the log; and writes the replies as
// batches complete, all of them before it returns (§7.7). The log
// resolves futures in the order they were added, so one goroutine waits
// for them in that order and holds none of them back. A draining server
// ends with a shutdown notice after the last reply.
func (srv *sessionHandler) serve(s network.Stream, r *bufio.Reader, requester identity.Entry, in, out *protocol.SessionCipher) (end sessionEnd, stamps int, readErr, writeErr error) {
	replies := make(chan []byte, protocol.MaxInFlight)
	slots := make(chan struct{}, protocol.MaxInFlight)
	pending := make(chan answer, protocol.MaxInFlight)
	written := make(chan error, 1)
	go func() { written <- writeReplies(s, out, replies, slots) }()
	// end is written before pending is closed; stamps is read after
	// written, which follows close(replies).
	debug := log.Level().Enabled(zapcore.DebugLevel)
	go func() {
		defer close(replies)
		for a := range pending {
			if st, err := a.future(); err != nil {
				status, msg := refusalOf(err)
				srv.Metrics.Refused(status)
				replies <- protocol.EncodeSessionReply(a.id, nil, status, msg)
			} else {
				stamps++
				srv.Metrics.Stamped(FlowSession, time.Since(a.read))
				if debug {
					log.Debugw("stamped", "flow", FlowSession, "serial", st.Statement.Serial, "requester", requester.ID,
						"time", protocol.FormatTime(st.Statement.Time))
				}
				replies <- protocol.EncodeSessionReply(a.id, st, protocol.StatusOK, "")
			}
		}
		if end == endDraining {
			slots <- struct{}{}
			replies <- protocol.EncodeSessionReply(protocol.NoticeID, nil, protocol.StatusShuttingDown,
				"the server is shutting down; requests not answered before this notice were not read")
		}
	}()
	// A drain interrupts the read; the flag is checked after each new
	// deadline, so a deadline set before the drain cannot outlive it.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-srv.Drain.Stopping():
			_ = s.SetReadDeadline(time.Now())
		case <-stop:
		}
	}()

	end, readErr = func() (sessionEnd, error) {
		for {
			_ = s.SetReadDeadline(time.Now().Add(protocol.SessionIdleTimeout))
			if srv.Drain.Draining() {
				return endDraining, nil
			}
			frame, err := protocol.ReadFrame(r, protocol.MaxSessionRequestSize)
			if errors.Is(err, io.EOF) {
				return endClosed, nil
			}
			if err != nil && srv.Drain.Draining() {
				return endDraining, nil
			}
			if p2pstream.Abandoned(err) {
				return endAbandoned, err
			}
			if err != nil {
				return endViolation, err
			}
			pt, err := in.Open(frame)
			if err != nil {
				return endViolation, err
			}
			req, err := protocol.ParseSessionRequest(pt)
			if err != nil {
				return endViolation, err
			}
			read := time.Now()
			slots <- struct{}{}
			// Stamps submitted are answered even if the session then
			// fails (§7.7): the log's context is not the session's.
			f := srv.Log.Add(context.Background(), authority.Entry{Requester: requester, Hash: req.Hash, Nonce: req.Nonce})
			pending <- answer{id: req.ID, read: read, future: f}
		}
	}()
	close(pending)
	writeErr = <-written
	return end, stamps, readErr, writeErr
}

// writeReplies seals and writes replies, flushing whenever none is
// waiting, so a batch of replies leaves in few writes.
func writeReplies(s network.Stream, out *protocol.SessionCipher, replies <-chan []byte, slots <-chan struct{}) error {
	w := bufio.NewWriterSize(s, sessionWriteBuffer)
	var failed error
	for pt := range replies {
		<-slots
		if failed != nil {
			continue // keep draining so submitters never block
		}
		_ = s.SetWriteDeadline(time.Now().Add(protocol.SessionIdleTimeout))
		if err := protocol.WriteFrame(w, out.Seal(pt)); err != nil {
			failed = err
			continue
		}
		if len(replies) == 0 {
			// The replies of one head come one after another from the
			// goroutine that waits for them: let it catch up once before
			// flushing, so that they leave in few writes.
			runtime.Gosched()
		}
		if len(replies) == 0 {
			if err := w.Flush(); err != nil {
				failed = err
			}
		}
	}
	if failed == nil {
		failed = w.Flush()
	}
	return failed
}
