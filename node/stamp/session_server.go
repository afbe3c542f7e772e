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

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/p2pstream"
)

// sessionHandler serves stamp sessions on the authority's log.
type sessionHandler struct {
	Key  *rsa.PrivateKey
	Self identity.Entry
	Dir  *identity.Directory
	Log  *authority.Authority
}

const (
	sessionReadBuffer  = 4 << 10
	sessionWriteBuffer = 32 << 10
)

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
		r := bufio.NewReaderSize(s, sessionReadBuffer)
		requester, in, out, err := srv.accept(s, r, remote)
		if err != nil {
			log.Warnw("session not opened", "peer", remote, "err", err)
			return
		}
		if err := srv.serve(s, r, requester, in, out); err != nil {
			log.Warnw("session: protocol violation; resetting stream", "peer", remote, "err", err)
			s.Reset()
			return
		}
		s.Close()
	}
}

// accept runs the key exchange. On failure the stream is already closed
// or reset.
func (srv *sessionHandler) accept(s network.Stream, r *bufio.Reader, remote peer.ID) (identity.Entry, *protocol.SessionCipher, *protocol.SessionCipher, error) {
	_ = s.SetDeadline(time.Now().Add(protocol.SessionHelloTimeout))
	frame, err := protocol.ReadFrame(r, protocol.MaxSessionHelloSize)
	if err != nil {
		s.Reset()
		return identity.Entry{}, nil, nil, err
	}
	refuse := func(status, msg string) (identity.Entry, *protocol.SessionCipher, *protocol.SessionCipher, error) {
		_ = protocol.WriteFrame(s, protocol.EncodeSessionRefusal(status, msg))
		s.Close()
		return identity.Entry{}, nil, nil, fmt.Errorf("%s: %s", status, msg)
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
	future authority.Future
}

// serve reads requests until the requester closes its side, adds them to
// the log, and writes the replies as batches complete. The log resolves
// futures in the order they were added, so one goroutine waits for them
// in that order and holds none of them back.
func (srv *sessionHandler) serve(s network.Stream, r *bufio.Reader, requester identity.Entry, in, out *protocol.SessionCipher) error {
	replies := make(chan []byte, protocol.MaxInFlight)
	slots := make(chan struct{}, protocol.MaxInFlight)
	pending := make(chan answer, protocol.MaxInFlight)
	writeErr := make(chan error, 1)
	go func() { writeErr <- writeReplies(s, out, replies, slots) }()
	go func() {
		defer close(replies)
		for a := range pending {
			st, err := a.future()
			if err != nil {
				replies <- protocol.EncodeSessionReply(a.id, nil, protocol.StatusInternal, "the server could not log the stamp")
			} else {
				replies <- protocol.EncodeSessionReply(a.id, st, protocol.StatusOK, "")
			}
		}
	}()

	readErr := func() error {
		for {
			_ = s.SetReadDeadline(time.Now().Add(protocol.SessionIdleTimeout))
			frame, err := protocol.ReadFrame(r, protocol.MaxSessionRequestSize)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			pt, err := in.Open(frame)
			if err != nil {
				return err
			}
			req, err := protocol.ParseSessionRequest(pt)
			if err != nil {
				return err
			}
			slots <- struct{}{}
			// Stamps submitted are answered even if the session then
			// fails (§7.7): the log's context is not the session's.
			f := srv.Log.Add(context.Background(), authority.Entry{Requester: requester, Hash: req.Hash, Nonce: req.Nonce})
			pending <- answer{id: req.ID, future: f}
		}
	}()
	close(pending)
	if err := <-writeErr; err != nil && readErr == nil {
		return err
	}
	return readErr
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
