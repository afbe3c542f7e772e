package stamp

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/protocol"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
)

// One-shot stamps (/tsnode/stamp/1.0.0) over real hosts, numbered by the
// server's log.
func TestStampStream(t *testing.T) {
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := startSessionServer(t, tr.Listen)
			h := testnet.ClientOf(t, "1000", srv.host)
			c := &OneShotClient{Host: h, Key: testkeys.Private(t, "1000"), Self: testnet.Entry(t, "1000"), Server: testnet.Entry(t, "server"), Trust: testnet.Trust(t, srv.dir)}
			for i := range 2 {
				rc, err := c.Stamp(testnet.Ctx(t), docHash(i))
				if err != nil {
					t.Fatal(err)
				}
				st, err := rc.Verify(testnet.Trust(t, srv.dir), docHash(i))
				if err != nil || rc.Format != protocol.ReceiptFormatV1 {
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
	srv := startSessionServer(t, testnet.Transports[0].Listen)
	server := testnet.Entry(t, "server")
	wrongKey := server
	wrongKey.PublicKey = testnet.Entry(t, "outsider").PublicKey
	for _, c := range []struct {
		name       string
		host, self identity.ID
		key        identity.ID
		server     identity.Entry
		want       error
		status     string
	}{
		{"id of another peer", "2000", "1000", "1000", server, protocol.ErrRefused, protocol.StatusPeerMismatch},
		{"unknown id", "outsider", "outsider", "outsider", server, protocol.ErrRefused, protocol.StatusUnknownID},
		{"request sealed to the wrong key", "1000", "1000", "1000", wrongKey, protocol.ErrRefused, protocol.StatusBadRequest},
		{"reply sealed to a key the requester does not hold", "1000", "1000", "2000", server, protocol.ErrOpen, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := srv.lg.Size()
			cl := &OneShotClient{Host: testnet.ClientOf(t, c.host, srv.host), Key: testkeys.Private(t, c.key), Self: testnet.Entry(t, c.self), Server: c.server, Trust: testnet.Trust(t, srv.dir)}
			rc, err := cl.Stamp(testnet.Ctx(t), docHash(1))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.status) || rc != nil {
				t.Fatalf("got %v, want %v %s", err, c.want, c.status)
			}
			if c.want == protocol.ErrRefused && srv.lg.Size() != before {
				t.Fatal("a refused request was logged")
			}
		})
	}
	t.Run("oversized request", func(t *testing.T) {
		s := testnet.RawStream(t, testnet.ClientOf(t, "1000", srv.host), srv.host.ID(), protocol.StampProtocolID)
		if _, err := s.Write(testnet.FrameHeader(protocol.MaxStampRequestSize + 1)); err != nil {
			t.Fatal(err)
		}
		testnet.ExpectReset(t, s)
	})
}

// Requests the session server cannot trust reset the session.
func TestSessionServerResets(t *testing.T) {
	srv := startSessionServer(t, testnet.Transports[0].Listen)
	client := testnet.ClientOf(t, "1000", srv.host)
	t.Run("request that does not authenticate", func(t *testing.T) {
		s := testnet.RawStream(t, client, srv.host.ID(), protocol.SessionProtocolID)
		hello, err := protocol.SealSessionHello(testnet.Entry(t, "server").PublicKey, "1000", fill(protocol.SessionKeySize, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.WriteFrame(s, hello); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(s)
		accept, err := protocol.ReadFrame(r, protocol.MaxSessionHelloSize)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := protocol.DecodeRecord(accept, protocol.SessionAcceptTag, 2); err != nil || string(f[0]) != protocol.StatusOK {
			t.Fatalf("hello not accepted: %v", err)
		}
		// Sealed under another key than the one in the hello.
		c, _ := protocol.NewSessionCipher(fill(protocol.SessionKeySize, 2), protocol.SessionRequestTag)
		if err := protocol.WriteFrame(s, c.Seal((&protocol.SessionRequest{ID: 0, Hash: docHash(0), Nonce: docNonce(0)}).Encode())); err != nil {
			t.Fatal(err)
		}
		if b, err := r.ReadByte(); err == nil {
			t.Fatalf("server answered a request it cannot open (%#x)", b)
		}
		testnet.ExpectLinger(t, s)
	})
	t.Run("malformed request", func(t *testing.T) {
		sess := mustSession(t, client)
		before := srv.lg.Size()
		sess.sends <- &sessionCall{req: &protocol.SessionRequest{ID: 7, Hash: docHash(0)[:protocol.HashSize-1], Nonce: docNonce(0)}}
		if _, err := sess.Stamp(testnet.Ctx(t), docHash(1)); err == nil {
			t.Fatal("session survived a malformed request")
		}
		if srv.lg.Size() != before {
			t.Fatal("a malformed request was logged")
		}
	})
}
