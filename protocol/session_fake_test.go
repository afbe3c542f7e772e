package protocol

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/mod/sumdb/tlog"

	"tsnode/identity"
	"tsnode/internal/merklelog"
	"tsnode/internal/testkeys"
)

// A fake session server: it runs the real key exchange and stamps each
// request genuinely in its own log, then lets the test decide which
// frames go back. The client must refuse every reply that is not the
// honest answer to its request.

// answerFunc returns the frame bodies to send for req, given the genuine
// stamp st; it seals with out (or not, to send raw bytes).
type answerFunc func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte

type fakeSessionServer struct {
	host     host.Host
	lg       *merklelog.Log
	signer   *LogSigner
	received chan *sessionRequest
	answer   answerFunc
}

func startFakeSessionServer(t testing.TB, answer answerFunc) *fakeSessionServer {
	t.Helper()
	lg := openLog(t, t.TempDir())
	f := &fakeSessionServer{lg: lg, signer: newSigner(t, lg, nil), received: make(chan *sessionRequest, 100), answer: answer}
	srv := &SessionServer{Key: testkeys.Private(t, "server"), Self: entry(t, "server"), Dir: testkeys.Directory(t, "server", "1000", "2000")}
	f.host = newHost(t, "server", testTransports[0].listen)
	f.host.SetStreamHandler(SessionProtocolID, func(s network.Stream) {
		r := bufio.NewReader(s)
		requester, in, out, err := srv.accept(s, r, s.Conn().RemotePeer())
		if err != nil {
			return
		}
		for {
			frame, err := ReadFrame(r, MaxSessionRequestSize)
			if err != nil {
				s.Close()
				return
			}
			pt, err := in.open(frame)
			if err != nil {
				s.Reset()
				return
			}
			req, err := parseSessionRequest(pt)
			if err != nil {
				s.Reset()
				return
			}
			st, err := wait(t, f.stampAsync(requester, req))
			if err != nil {
				s.Reset()
				return
			}
			f.received <- req
			for _, b := range f.answer(req, st, out) {
				if err := WriteFrame(s, b); err != nil {
					return
				}
			}
		}
	})
	return f
}

func (f *fakeSessionServer) stampAsync(requester identity.Entry, req *sessionRequest) <-chan stampResult {
	ch := make(chan stampResult, 1)
	f.signer.Submit(requester, req.hash, req.nonce, func(st *LogStamp, err error) { ch <- stampResult{st, err} })
	return ch
}

// hashOf is the document hash whose first byte selects a fake's answer.
func hashOf(k byte) []byte {
	h := fill(HashSize, 0x77)
	h[0] = k
	return h
}

func sealed(out *sessionCipher, pt []byte) [][]byte { return [][]byte{out.seal(pt)} }

// Edits of a genuine stamp.
func editStatement(st *LogStamp, change func(*Statement)) *LogStamp {
	s := cloneStatement(st.Statement)
	change(s)
	return &LogStamp{Statement: s, Proof: st.Proof, Head: st.Head}
}

func editProof(st *LogStamp, change func(tlog.RecordProof) tlog.RecordProof) *LogStamp {
	return &LogStamp{Statement: st.Statement, Proof: change(append(tlog.RecordProof(nil), st.Proof...)), Head: st.Head}
}

func editHead(t testing.TB, st *LogStamp, signer identity.ID, change func(*TreeHead)) *LogStamp {
	h := *st.Head.Head
	change(&h)
	enc := h.Encode()
	return &LogStamp{Statement: st.Statement, Proof: st.Proof, Head: &SignedTreeHead{Head: &h, Encoded: enc, Signature: signAs(t, signer, enc)}}
}

// Replies that are not the honest answer fail that stamp with the right
// sentinel, and the session goes on.
func TestSessionClientRefusesBadReplies(t *testing.T) {
	outsider, r2000 := entry(t, "outsider"), entry(t, "2000")
	var firstHead *SignedTreeHead
	type tc struct {
		name string
		edit func(req *sessionRequest, st *LogStamp) []byte // plaintext reply
		want error
	}
	reply := func(req *sessionRequest, st *LogStamp) []byte { return encodeSessionReply(req.id, st, StatusOK, "") }
	cases := []tc{
		{"honest", reply, nil},
		{"another document hash", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editStatement(st, func(s *Statement) { s.DocumentHash = docHash(1) }))
		}, ErrReplyMismatch},
		{"another nonce", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editStatement(st, func(s *Statement) { s.Nonce = docNonce(1) }))
		}, ErrReplyMismatch},
		{"stamped for another requester", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editStatement(st, func(s *Statement) { s.RequesterID, s.RequesterPeer = r2000.ID, r2000.PeerID }))
		}, ErrReplyMismatch},
		{"stamped by another server", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editStatement(st, func(s *Statement) { s.ServerID, s.ServerPeer = outsider.ID, outsider.PeerID }))
		}, ErrReplyMismatch},
		{"tree head signed by the wrong key", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editHead(t, st, "outsider", func(*TreeHead) {}))
		}, ErrBadSignature},
		{"tree head with a forged root signed by the wrong key", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editHead(t, st, "outsider", func(h *TreeHead) { h.Root[3] ^= 1 }))
		}, ErrBadSignature},
		{"tree head of another server", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editHead(t, st, "outsider", func(h *TreeHead) { h.ServerID, h.ServerPeer = outsider.ID, outsider.PeerID }))
		}, ErrUntrustedSigner},
		{"tree head signature altered", func(req *sessionRequest, st *LogStamp) []byte {
			c := *st.Head
			c.Signature = flip(c.Signature, 0)
			return reply(req, &LogStamp{Statement: st.Statement, Proof: st.Proof, Head: &c})
		}, ErrBadSignature},
		{"proof hash altered", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editProof(st, func(p tlog.RecordProof) tlog.RecordProof { p[len(p)-1][31] ^= 1; return p }))
		}, ErrBadProof},
		{"proof truncated", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editProof(st, func(p tlog.RecordProof) tlog.RecordProof { return p[:len(p)-1] }))
		}, ErrBadProof},
		{"proof for another serial", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editStatement(st, func(s *Statement) { s.Serial-- }))
		}, ErrBadProof},
		{"the server's head of an older tree", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, &LogStamp{Statement: st.Statement, Proof: st.Proof, Head: firstHead})
		}, ErrBadProof}, // older than the stamp: refused before the proof is checked
		{"the server's head of another size", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editHead(t, st, "server", func(h *TreeHead) { h.Size++ }))
		}, ErrBadProof},
		{"the server's head, older than the stamp", func(req *sessionRequest, st *LogStamp) []byte {
			return reply(req, editHead(t, st, "server", func(h *TreeHead) { h.Time = st.Statement.Time.Add(-time.Nanosecond) }))
		}, ErrBadProof},
		{"refusal", func(req *sessionRequest, _ *LogStamp) []byte {
			return encodeSessionReply(req.id, nil, StatusInternal, "no stamp for you")
		}, ErrRefused},
		{"leaf that does not parse", func(req *sessionRequest, st *LogStamp) []byte {
			return EncodeRecord(sessionReplyTag, u64(req.id), []byte(StatusOK), []byte("leaf"), nil, st.Head.Encoded, st.Head.Signature)
		}, ErrMalformed},
		{"tree head that does not parse", func(req *sessionRequest, st *LogStamp) []byte {
			return EncodeRecord(sessionReplyTag, u64(req.id), []byte(StatusOK), st.Statement.EncodeLeaf(), nil, []byte("head"), st.Head.Signature)
		}, ErrMalformed},
	}
	srv := startFakeSessionServer(t, func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
		if firstHead == nil {
			firstHead = st.Head
		}
		k := int(req.hash[0])
		switch {
		case k < len(cases):
			return sealed(out, cases[k].edit(req, st))
		case k == 200: // first a reply for an id never asked, then the answer
			return [][]byte{out.seal(encodeSessionReply(req.id+1000, st, StatusOK, "")), out.seal(reply(req, st))}
		}
		return sealed(out, reply(req, st))
	})
	sess := mustSession(t, clientOf(t, "1000", srv.host))
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := sess.Stamp(testCtx(t), hashOf(byte(k)))
			if c.want == nil {
				if err != nil || !bytes.Equal(st.Statement.DocumentHash, hashOf(byte(k))) {
					t.Fatalf("honest reply: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || st != nil {
				t.Fatalf("got %v, %v; want %v", st, err, c.want)
			}
		})
	}
	t.Run("reply for an unknown id is ignored", func(t *testing.T) {
		if _, err := sess.Stamp(testCtx(t), hashOf(200)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the session goes on", func(t *testing.T) {
		st, err := sess.Stamp(testCtx(t), hashOf(201))
		if err != nil || !bytes.Equal(st.Statement.DocumentHash, hashOf(201)) {
			t.Fatalf("%v, %v", st, err)
		}
		if _, err := st.Receipt().Verify(trustOf(t, testkeys.Directory(t, "server", "1000")), hashOf(201)); err != nil {
			t.Fatal(err)
		}
	})
}

// Frames the client cannot trust end the whole session: every pending
// and later stamp fails.
func TestSessionClientEndsOnBadFrames(t *testing.T) {
	cases := []struct {
		name   string
		frames func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte
		want   error
	}{
		{"frame that does not authenticate", func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
			b := out.seal(encodeSessionReply(req.id, st, StatusOK, ""))
			return [][]byte{flip(b, len(b)/2)}
		}, ErrOpen},
		{"frame sealed twice with one sequence number", func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
			b := out.seal(encodeSessionReply(req.id+1000, st, StatusOK, ""))
			return [][]byte{b, b}
		}, ErrOpen},
		{"frames out of order", func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
			a := out.seal(encodeSessionReply(req.id+1000, st, StatusOK, ""))
			b := out.seal(encodeSessionReply(req.id, st, StatusOK, ""))
			return [][]byte{b, a}
		}, ErrOpen},
		{"not a reply record", func(req *sessionRequest, _ *LogStamp, out *sessionCipher) [][]byte {
			return sealed(out, EncodeRecord(sessionRequestTag, u64(req.id), req.hash, req.nonce))
		}, ErrMalformed},
		{"proof of a partial hash", func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
			return sealed(out, EncodeRecord(sessionReplyTag, u64(req.id), []byte(StatusOK), st.Statement.EncodeLeaf(), make([]byte, 33), st.Head.Encoded, st.Head.Signature))
		}, ErrMalformed},
		{"proof of 65 hashes", func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
			return sealed(out, EncodeRecord(sessionReplyTag, u64(req.id), []byte(StatusOK), st.Statement.EncodeLeaf(), make([]byte, 65*tlog.HashSize), st.Head.Encoded, st.Head.Signature))
		}, ErrMalformed},
		{"oversized frame", func(*sessionRequest, *LogStamp, *sessionCipher) [][]byte {
			return [][]byte{make([]byte, MaxSessionReplySize+1)}
		}, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startFakeSessionServer(t, c.frames)
			sess := mustSession(t, clientOf(t, "1000", srv.host))
			if _, err := sess.Stamp(testCtx(t), hashOf(1)); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := sess.Stamp(testCtx(t), hashOf(2)); !errors.Is(err, c.want) {
				t.Fatalf("stamp on the failed session: %v, want %v", err, c.want)
			}
		})
	}
}

// A cancelled Stamp returns at once; its late reply is dropped and the
// session keeps working. Close with a stamp the server never answers
// does not hang.
func TestSessionCancelAndClose(t *testing.T) {
	release := make(chan struct{})
	srv := startFakeSessionServer(t, func(req *sessionRequest, st *LogStamp, out *sessionCipher) [][]byte {
		switch req.hash[0] {
		case 1:
			<-release
		case 2:
			return nil // never answered
		}
		return sealed(out, encodeSessionReply(req.id, st, StatusOK, ""))
	})
	sess := mustSession(t, clientOf(t, "1000", srv.host))

	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() {
		_, err := sess.Stamp(ctx, hashOf(1))
		done <- err
	}()
	<-srv.received
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled stamp: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled Stamp does not return")
	}
	close(release)
	for k := byte(3); k < 6; k++ {
		st, err := sess.Stamp(testCtx(t), hashOf(k))
		if err != nil || !bytes.Equal(st.Statement.DocumentHash, hashOf(k)) {
			t.Fatalf("stamp after a cancelled one: %v, %v", st, err)
		}
	}
	sess.mu.Lock()
	pending := len(sess.pending)
	sess.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d calls left pending", pending)
	}

	// A stamp the server never answers, then Close.
	go func() {
		_, err := sess.Stamp(testCtx(t), hashOf(2))
		done <- err
	}()
	for req := range srv.received {
		if req.hash[0] == 2 {
			break
		}
	}
	closed := make(chan struct{})
	go func() { sess.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs on an unanswered stamp")
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "ended") {
			t.Fatalf("unanswered stamp: %v, want the session's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unanswered Stamp hangs after Close")
	}
}
