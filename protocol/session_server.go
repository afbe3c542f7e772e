package protocol

import (
	"bufio"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
	"tsnode/internal/p2pstream"
)

// SessionServer serves stamp sessions on a LogSigner.
type SessionServer struct {
	Key    *rsa.PrivateKey
	Self   identity.Entry
	Dir    *identity.Directory
	Signer *LogSigner
}

const (
	sessionReadBuffer  = 4 << 10
	sessionWriteBuffer = 32 << 10
)

// Handler returns the session stream handler.
func (srv *SessionServer) Handler() network.StreamHandler {
	return func(s network.Stream) {
		remote := s.Conn().RemotePeer()
		release, err := p2pstream.Prepare(s, SessionServiceName, sessionReadBuffer+sessionWriteBuffer+MaxSessionReplySize)
		if err != nil {
			Log.Debugw("session refused", "peer", remote, "err", err)
			s.Reset()
			return
		}
		defer release()
		r := bufio.NewReaderSize(s, sessionReadBuffer)
		requester, in, out, err := srv.accept(s, r, remote)
		if err != nil {
			Log.Warnw("session not opened", "peer", remote, "err", err)
			return
		}
		if err := srv.serve(s, r, requester, in, out); err != nil {
			Log.Warnw("session: protocol violation; resetting stream", "peer", remote, "err", err)
			s.Reset()
			return
		}
		s.Close()
	}
}

// accept runs the key exchange. On failure the stream is already closed
// or reset.
func (srv *SessionServer) accept(s network.Stream, r *bufio.Reader, remote peer.ID) (identity.Entry, *sessionCipher, *sessionCipher, error) {
	_ = s.SetDeadline(time.Now().Add(SessionHelloTimeout))
	frame, err := ReadFrame(r, MaxSessionHelloSize)
	if err != nil {
		s.Reset()
		return identity.Entry{}, nil, nil, err
	}
	refuse := func(status, msg string) (identity.Entry, *sessionCipher, *sessionCipher, error) {
		_ = WriteFrame(s, EncodeRecord(sessionAcceptTag, []byte(status), []byte(msg)))
		s.Close()
		return identity.Entry{}, nil, nil, fmt.Errorf("%s: %s", status, msg)
	}
	id, requestKey, err := openSessionHello(srv.Key, frame)
	if err != nil {
		return refuse(StatusBadRequest, err.Error())
	}
	requester, err := srv.Dir.Lookup(id)
	if err != nil {
		return refuse(StatusUnknownID, err.Error())
	}
	if requester.PeerID != remote {
		return refuse(StatusPeerMismatch, fmt.Sprintf("session claims id %q (peer %s) but was opened by peer %s", id, requester.PeerID, remote))
	}
	replyKey, err := NewSessionKey()
	if err != nil {
		return refuse(StatusInternal, "no randomness")
	}
	sealed, err := Seal(requester.PublicKey, sessionKeyTag, EncodeRecord(sessionKeyTag, replyKey))
	if err != nil {
		return refuse(StatusInternal, "sealing the session key failed")
	}
	if err := WriteFrame(s, EncodeRecord(sessionAcceptTag, []byte(StatusOK), sealed)); err != nil {
		s.Reset()
		return identity.Entry{}, nil, nil, err
	}
	in, _ := newSessionCipher(requestKey, sessionRequestTag)
	out, _ := newSessionCipher(replyKey, sessionReplyTag)
	_ = s.SetDeadline(time.Time{})
	return requester, in, out, nil
}

// serve reads requests until the requester closes its side, hands them to
// the signer, and writes the replies as batches complete.
func (srv *SessionServer) serve(s network.Stream, r *bufio.Reader, requester identity.Entry, in, out *sessionCipher) error {
	replies := make(chan []byte, MaxInFlight)
	slots := make(chan struct{}, MaxInFlight)
	var inFlight sync.WaitGroup
	writeErr := make(chan error, 1)
	go func() { writeErr <- writeReplies(s, out, replies, slots) }()

	readErr := func() error {
		for {
			_ = s.SetReadDeadline(time.Now().Add(SessionIdleTimeout))
			frame, err := ReadFrame(r, MaxSessionRequestSize)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			pt, err := in.open(frame)
			if err != nil {
				return err
			}
			req, err := parseSessionRequest(pt)
			if err != nil {
				return err
			}
			slots <- struct{}{}
			inFlight.Add(1)
			srv.Signer.Submit(requester, req.hash, req.nonce, func(st *LogStamp, err error) {
				if err != nil {
					replies <- encodeSessionReply(req.id, nil, StatusInternal, "the server could not log the stamp")
				} else {
					replies <- encodeSessionReply(req.id, st, StatusOK, "")
				}
				inFlight.Done()
			})
		}
	}()
	inFlight.Wait()
	close(replies)
	if err := <-writeErr; err != nil && readErr == nil {
		return err
	}
	return readErr
}

// writeReplies seals and writes replies, flushing whenever none is
// waiting, so a batch of replies leaves in few writes.
func writeReplies(s network.Stream, out *sessionCipher, replies <-chan []byte, slots <-chan struct{}) error {
	w := bufio.NewWriterSize(s, sessionWriteBuffer)
	var failed error
	for pt := range replies {
		<-slots
		if failed != nil {
			continue // keep draining so submitters never block
		}
		_ = s.SetWriteDeadline(time.Now().Add(SessionIdleTimeout))
		if err := WriteFrame(w, out.seal(pt)); err != nil {
			failed = err
			continue
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
