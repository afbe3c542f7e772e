package protocol

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"tsnode/identity"
	"tsnode/internal/testkeys"
)

// One-shot stamps (/tsnode/stamp/1.0.0) over real hosts, numbered by the
// server's log.
func TestStampStream(t *testing.T) {
	for _, tr := range testTransports {
		t.Run(tr.name, func(t *testing.T) {
			srv := startSessionServer(t, tr.listen)
			h := clientOf(t, "1000", srv.host)
			c := &StampClient{Host: h, Key: testkeys.Private(t, "1000"), Self: entry(t, "1000"), Server: entry(t, "server"), Trust: trustOf(t, srv.dir)}
			for i := range 2 {
				rc, err := c.Stamp(testCtx(t), docHash(i))
				if err != nil {
					t.Fatal(err)
				}
				st, err := rc.Verify(trustOf(t, srv.dir), docHash(i))
				if err != nil || rc.Format != ReceiptFormatV1 {
					t.Fatalf("%s receipt: %v", rc.Format, err)
				}
				if st.Serial != uint64(i) || srv.lg.Size() != uint64(i+1) {
					t.Fatalf("serial %d, log size %d", st.Serial, srv.lg.Size())
				}
			}
		})
	}
}

func TestStampStreamRefused(t *testing.T) {
	srv := startSessionServer(t, testTransports[0].listen)
	server := entry(t, "server")
	wrongKey := server
	wrongKey.PublicKey = entry(t, "outsider").PublicKey
	for _, c := range []struct {
		name       string
		host, self identity.ID
		key        identity.ID
		server     identity.Entry
		want       error
		status     string
	}{
		{"id of another peer", "2000", "1000", "1000", server, ErrRefused, StatusPeerMismatch},
		{"unknown id", "outsider", "outsider", "outsider", server, ErrRefused, StatusUnknownID},
		{"request sealed to the wrong key", "1000", "1000", "1000", wrongKey, ErrRefused, StatusBadRequest},
		{"reply sealed to a key the requester does not hold", "1000", "1000", "2000", server, ErrOpen, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := srv.lg.Size()
			cl := &StampClient{Host: clientOf(t, c.host, srv.host), Key: testkeys.Private(t, c.key), Self: entry(t, c.self), Server: c.server, Trust: trustOf(t, srv.dir)}
			rc, err := cl.Stamp(testCtx(t), docHash(1))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.status) || rc != nil {
				t.Fatalf("got %v, want %v %s", err, c.want, c.status)
			}
			if c.want == ErrRefused && srv.lg.Size() != before {
				t.Fatal("a refused request was logged")
			}
		})
	}
	t.Run("oversized request", func(t *testing.T) {
		s := rawStream(t, clientOf(t, "1000", srv.host), srv.host.ID(), StampProtocolID)
		if _, err := s.Write(frameHeader(MaxStampRequestSize + 1)); err != nil {
			t.Fatal(err)
		}
		expectReset(t, s)
	})
}

// Requests the session server cannot trust reset the session.
func TestSessionServerResets(t *testing.T) {
	srv := startSessionServer(t, testTransports[0].listen)
	client := clientOf(t, "1000", srv.host)
	t.Run("request that does not authenticate", func(t *testing.T) {
		s := rawStream(t, client, srv.host.ID(), SessionProtocolID)
		hello, err := sealSessionHello(entry(t, "server").PublicKey, "1000", fill(SessionKeySize, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteFrame(s, hello); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(s)
		accept, err := ReadFrame(r, MaxSessionHelloSize)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := DecodeRecord(accept, sessionAcceptTag, 2); err != nil || string(f[0]) != StatusOK {
			t.Fatalf("hello not accepted: %v", err)
		}
		// Sealed under another key than the one in the hello.
		c, _ := newSessionCipher(fill(SessionKeySize, 2), sessionRequestTag)
		if err := WriteFrame(s, c.seal((&sessionRequest{id: 0, hash: docHash(0), nonce: docNonce(0)}).encode())); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadByte(); err == nil {
			t.Fatal("server answered a request it cannot open")
		}
		expectReset(t, s)
	})
	t.Run("malformed request", func(t *testing.T) {
		sess := mustSession(t, client)
		before := srv.lg.Size()
		sess.sends <- EncodeRecord(sessionRequestTag, u64(7), docHash(0)[:HashSize-1], docNonce(0))
		if _, err := sess.Stamp(testCtx(t), docHash(1)); err == nil {
			t.Fatal("session survived a malformed request")
		}
		if srv.lg.Size() != before {
			t.Fatal("a malformed request was logged")
		}
	})
}
