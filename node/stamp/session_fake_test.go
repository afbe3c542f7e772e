package stamp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
)

// A fake session server: it runs the real key exchange and stamps each
// request genuinely in its own log, then lets the test decide which
// frames go back. The client must refuse every reply that is not the
// honest answer to its request.

// answerFunc returns the frame bodies to send for req, given the genuine
// stamp st; it seals with out (or not, to send raw bytes).
type answerFunc func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte

type fakeSessionServer struct {
	host     host.Host
	lg       *merklelog.Log
	signer   *authority.Authority
	received chan *protocol.SessionRequest
	answer   answerFunc
}

func startFakeSessionServer(t testing.TB, answer answerFunc) *fakeSessionServer {
	t.Helper()
	lg := openLog(t, t.TempDir())
	f := &fakeSessionServer{lg: lg, signer: newSigner(t, lg, nil), received: make(chan *protocol.SessionRequest, 100), answer: answer}
	srv := &sessionHandler{Key: testkeys.Private(t, "server"), Self: testnet.Entry(t, "server"), Dir: testkeys.Directory(t, "server", "1000", "2000")}
	f.host = testnet.NewHost(t, "server", testnet.Transports[0].Listen)
	f.host.SetStreamHandler(protocol.SessionProtocolID, func(s network.Stream) {
		r := bufio.NewReader(s)
		requester, in, out, err := srv.accept(s, r, s.Conn().RemotePeer(), true)
		if err != nil {
			return
		}
		for {
			frame, err := protocol.ReadFrame(r, protocol.MaxSessionRequestSize)
			if err != nil {
				s.Close()
				return
			}
			pt, err := in.Open(frame)
			if err != nil {
				s.Reset()
				return
			}
			req, err := protocol.ParseSessionRequest(pt)
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
				if err := protocol.WriteFrame(s, b); err != nil {
					return
				}
			}
		}
	})
	return f
}

func (f *fakeSessionServer) stampAsync(requester identity.Entry, req *protocol.SessionRequest) <-chan stampResult {
	ch := make(chan stampResult, 1)
	go func() {
		st, err := f.signer.Add(context.Background(), authority.Entry{Requester: requester, Hash: req.Hash, Nonce: req.Nonce})()
		ch <- stampResult{st, err}
	}()
	return ch
}

// hashOf is the document hash whose first byte selects a fake's answer.
func hashOf(k byte) []byte {
	h := fill(protocol.HashSize, 0x77)
	h[0] = k
	return h
}

func sealed(out *protocol.SessionCipher, pt []byte) [][]byte { return [][]byte{out.Seal(pt)} }

// Edits of a genuine stamp.
func editStatement(st *protocol.LogStamp, change func(*protocol.Statement)) *protocol.LogStamp {
	s := cloneStatement(st.Statement)
	change(s)
	return &protocol.LogStamp{Statement: s, Proof: st.Proof, Head: st.Head}
}

func editProof(st *protocol.LogStamp, change func(tlog.RecordProof) tlog.RecordProof) *protocol.LogStamp {
	return &protocol.LogStamp{Statement: st.Statement, Proof: change(append(tlog.RecordProof(nil), st.Proof...)), Head: st.Head}
}

func editHead(t testing.TB, st *protocol.LogStamp, signer identity.ID, change func(*protocol.TreeHead)) *protocol.LogStamp {
	h := *st.Head.Head
	change(&h)
	enc := h.Encode()
	return &protocol.LogStamp{Statement: st.Statement, Proof: st.Proof, Head: &protocol.SignedTreeHead{Head: &h, Encoded: enc, Signature: signAs(t, signer, enc)}}
}

// Replies that are not the honest answer fail that stamp with the right
// sentinel, and the session goes on.
func TestSessionClientRefusesBadReplies(t *testing.T) {
	outsider, r2000 := testnet.Entry(t, "outsider"), testnet.Entry(t, "2000")
	var firstHead *protocol.SignedTreeHead
	type tc struct {
		name string
		edit func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte // plaintext reply
		want error
	}
	reply := func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
		return protocol.EncodeSessionReply(req.ID, st, protocol.StatusOK, "")
	}
	cases := []tc{
		{"honest", reply, nil},
		{"another document hash", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editStatement(st, func(s *protocol.Statement) { s.DocumentHash = docHash(1) }))
		}, protocol.ErrReplyMismatch},
		{"another nonce", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editStatement(st, func(s *protocol.Statement) { s.Nonce = docNonce(1) }))
		}, protocol.ErrReplyMismatch},
		{"stamped for another requester", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editStatement(st, func(s *protocol.Statement) { s.RequesterID, s.RequesterPeer = r2000.ID, r2000.PeerID }))
		}, protocol.ErrReplyMismatch},
		{"stamped by another server", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editStatement(st, func(s *protocol.Statement) { s.ServerID, s.ServerPeer = outsider.ID, outsider.PeerID }))
		}, protocol.ErrReplyMismatch},
		{"tree head signed by the wrong key", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editHead(t, st, "outsider", func(*protocol.TreeHead) {}))
		}, protocol.ErrBadSignature},
		{"tree head with a forged root signed by the wrong key", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editHead(t, st, "outsider", func(h *protocol.TreeHead) { h.Root[3] ^= 1 }))
		}, protocol.ErrBadSignature},
		{"tree head of another server", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editHead(t, st, "outsider", func(h *protocol.TreeHead) { h.ServerID, h.ServerPeer = outsider.ID, outsider.PeerID }))
		}, protocol.ErrUntrustedSigner},
		{"tree head signature altered", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			c := *st.Head
			c.Signature = flip(c.Signature, 0)
			return reply(req, &protocol.LogStamp{Statement: st.Statement, Proof: st.Proof, Head: &c})
		}, protocol.ErrBadSignature},
		{"proof hash altered", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editProof(st, func(p tlog.RecordProof) tlog.RecordProof { p[len(p)-1][31] ^= 1; return p }))
		}, protocol.ErrBadProof},
		{"proof truncated", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editProof(st, func(p tlog.RecordProof) tlog.RecordProof { return p[:len(p)-1] }))
		}, protocol.ErrBadProof},
		{"proof for another serial", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editStatement(st, func(s *protocol.Statement) { s.Serial-- }))
		}, protocol.ErrBadProof},
		{"the server's head of an older tree", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, &protocol.LogStamp{Statement: st.Statement, Proof: st.Proof, Head: firstHead})
		}, protocol.ErrBadProof}, // older than the stamp: refused before the proof is checked
		{"the server's head of another size", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editHead(t, st, "server", func(h *protocol.TreeHead) { h.Size++ }))
		}, protocol.ErrBadProof},
		{"the server's head, older than the stamp", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return reply(req, editHead(t, st, "server", func(h *protocol.TreeHead) { h.Time = st.Statement.Time.Add(-time.Nanosecond) }))
		}, protocol.ErrBadProof},
		{"refusal", func(req *protocol.SessionRequest, _ *protocol.LogStamp) []byte {
			return protocol.EncodeSessionReply(req.ID, nil, protocol.StatusInternal, "no stamp for you")
		}, protocol.ErrRefused},
		{"leaf that does not parse", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return protocol.EncodeRecord(protocol.SessionReplyTag, u64(req.ID), []byte(protocol.StatusOK), []byte("leaf"), nil, st.Head.Encoded, st.Head.Signature)
		}, protocol.ErrMalformed},
		{"tree head that does not parse", func(req *protocol.SessionRequest, st *protocol.LogStamp) []byte {
			return protocol.EncodeRecord(protocol.SessionReplyTag, u64(req.ID), []byte(protocol.StatusOK), st.Statement.EncodeLeaf(), nil, []byte("head"), st.Head.Signature)
		}, protocol.ErrMalformed},
	}
	srv := startFakeSessionServer(t, func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
		if firstHead == nil {
			firstHead = st.Head
		}
		k := int(req.Hash[0])
		switch {
		case k < len(cases):
			return sealed(out, cases[k].edit(req, st))
		case k == 200: // first a reply for an id never asked, then the answer
			return [][]byte{out.Seal(protocol.EncodeSessionReply(req.ID+1000, st, protocol.StatusOK, "")), out.Seal(reply(req, st))}
		}
		return sealed(out, reply(req, st))
	})
	sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := sess.Stamp(testnet.Ctx(t), hashOf(byte(k)))
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
		if _, err := sess.Stamp(testnet.Ctx(t), hashOf(200)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the session goes on", func(t *testing.T) {
		st, err := sess.Stamp(testnet.Ctx(t), hashOf(201))
		if err != nil || !bytes.Equal(st.Statement.DocumentHash, hashOf(201)) {
			t.Fatalf("%v, %v", st, err)
		}
		if _, err := st.Receipt().Verify(testnet.Trust(t, testkeys.Directory(t, "server", "1000")), hashOf(201)); err != nil {
			t.Fatal(err)
		}
	})
}

// Frames the client cannot trust end the whole session: every pending
// and later stamp fails.
func TestSessionClientEndsOnBadFrames(t *testing.T) {
	cases := []struct {
		name   string
		frames func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte
		want   error
	}{
		{"frame that does not authenticate", func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
			b := out.Seal(protocol.EncodeSessionReply(req.ID, st, protocol.StatusOK, ""))
			return [][]byte{flip(b, len(b)/2)}
		}, protocol.ErrOpen},
		{"frame sealed twice with one sequence number", func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
			b := out.Seal(protocol.EncodeSessionReply(req.ID+1000, st, protocol.StatusOK, ""))
			return [][]byte{b, b}
		}, protocol.ErrOpen},
		{"frames out of order", func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
			a := out.Seal(protocol.EncodeSessionReply(req.ID+1000, st, protocol.StatusOK, ""))
			b := out.Seal(protocol.EncodeSessionReply(req.ID, st, protocol.StatusOK, ""))
			return [][]byte{b, a}
		}, protocol.ErrOpen},
		{"not a reply record", func(req *protocol.SessionRequest, _ *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
			return sealed(out, protocol.EncodeRecord(protocol.SessionRequestTag, u64(req.ID), req.Hash, req.Nonce))
		}, protocol.ErrMalformed},
		{"proof of a partial hash", func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
			return sealed(out, protocol.EncodeRecord(protocol.SessionReplyTag, u64(req.ID), []byte(protocol.StatusOK), st.Statement.EncodeLeaf(), make([]byte, 33), st.Head.Encoded, st.Head.Signature))
		}, protocol.ErrMalformed},
		{"proof of 65 hashes", func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
			return sealed(out, protocol.EncodeRecord(protocol.SessionReplyTag, u64(req.ID), []byte(protocol.StatusOK), st.Statement.EncodeLeaf(), make([]byte, 65*tlog.HashSize), st.Head.Encoded, st.Head.Signature))
		}, protocol.ErrMalformed},
		{"oversized frame", func(*protocol.SessionRequest, *protocol.LogStamp, *protocol.SessionCipher) [][]byte {
			return [][]byte{make([]byte, protocol.MaxSessionReplySize+1)}
		}, protocol.ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startFakeSessionServer(t, c.frames)
			sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))
			if _, err := sess.Stamp(testnet.Ctx(t), hashOf(1)); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := sess.Stamp(testnet.Ctx(t), hashOf(2)); !errors.Is(err, c.want) {
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
	srv := startFakeSessionServer(t, func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
		switch req.Hash[0] {
		case 1:
			<-release
		case 2:
			return nil // never answered
		}
		return sealed(out, protocol.EncodeSessionReply(req.ID, st, protocol.StatusOK, ""))
	})
	sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))

	ctx, cancel := context.WithCancel(testnet.Ctx(t))
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
		st, err := sess.Stamp(testnet.Ctx(t), hashOf(k))
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
		_, err := sess.Stamp(testnet.Ctx(t), hashOf(2))
		done <- err
	}()
	for req := range srv.received {
		if req.Hash[0] == 2 {
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
