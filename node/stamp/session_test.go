package stamp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
)

// Stamp sessions over real libp2p hosts on 127.0.0.1, with the test-only
// keys. (Package node imports protocol, so these build hosts with
// libp2p.New directly.)

// sessionServer is a real server: the authority on a log in t.TempDir(),
// serving sessions, one-shot stamps and the log protocol.
type sessionServer struct {
	host   host.Host
	lg     *merklelog.Log
	signer *authority.Authority
	dir    *identity.Directory
	svc    *Service
}

func startSessionServer(t testing.TB, listen string) *sessionServer {
	t.Helper()
	return startSessionServerWith(t, listen, serverSetup{})
}

// serverSetup is what a test changes in a sessionServer.
type serverSetup struct {
	metrics   Metrics            // nil: none
	authority []authority.Option // the authority's options
	// log, if set, is the log the authority is given, made of the
	// server's bbolt log.
	log func(*merklelog.Log) authority.Log
}

func startSessionServerWith(t testing.TB, listen string, setup serverSetup) *sessionServer {
	t.Helper()
	dir := testkeys.Directory(t, "server", "1000", "2000")
	lg := openLog(t, t.TempDir())
	var alog authority.Log = lg
	if setup.log != nil {
		alog = setup.log(lg)
	}
	signer, err := authority.New(alog, testkeys.Private(t, "server"), testnet.Entry(t, "server"), setup.authority...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { signer.Close() })
	h := testnet.NewHost(t, "server", listen)
	svc, err := New(h, testkeys.Private(t, "server"), testnet.Entry(t, "server"), dir, signer, WithMetrics(setup.metrics))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &sessionServer{host: h, lg: lg, signer: signer, dir: dir, svc: svc}
}

// openSession opens a session from client as self (whose key it uses)
// to the server entry.
func openSession(t testing.TB, client host.Host, self identity.ID, server identity.Entry) (*Session, error) {
	t.Helper()
	s, err := OpenSession(testnet.Ctx(t), client, testkeys.Private(t, self), testnet.Entry(t, self), server, testnet.Trust(t, testkeys.Directory(t, "server")), nil)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func mustSession(t testing.TB, client host.Host) *Session {
	t.Helper()
	s, err := openSession(t, client, "1000", testnet.Entry(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionManyInFlight(t *testing.T) {
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := startSessionServer(t, tr.Listen)
			sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))
			const n = 200
			stamps := make([]*protocol.LogStamp, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					st, err := sess.Stamp(testnet.Ctx(t), docHash(i))
					if err != nil {
						t.Errorf("stamp %d: %v", i, err)
					}
					stamps[i] = st
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			heads := map[string]bool{}
			serials := map[uint64]bool{}
			cache := protocol.NewHeadCache(64)
			for i, st := range stamps {
				// Replies were matched by id: each stamp is for its own hash.
				if !bytes.Equal(st.Statement.DocumentHash, docHash(i)) || st.Statement.RequesterID != "1000" {
					t.Fatalf("stamp %d is for %x by %s", i, st.Statement.DocumentHash, st.Statement.RequesterID)
				}
				if serials[st.Statement.Serial] {
					t.Fatalf("serial %d twice", st.Statement.Serial)
				}
				serials[st.Statement.Serial] = true
				heads[string(st.Head.Encoded)] = true
				if _, err := st.Receipt().VerifyCached(testnet.Trust(t, srv.dir), docHash(i), cache); err != nil {
					t.Fatalf("stamp %d: %v", i, err)
				}
			}
			t.Logf("%d stamps in one session, %d signed tree heads", n, len(heads))
			if srv.lg.Size() != n {
				t.Fatalf("log size %d, want %d", srv.lg.Size(), n)
			}
			// A wrong-size hash is refused locally.
			if _, err := sess.Stamp(testnet.Ctx(t), docHash(0)[:protocol.HashSize-1]); err == nil {
				t.Fatal("31-byte hash accepted")
			}
			if err := sess.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := sess.Stamp(testnet.Ctx(t), docHash(0)); !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("stamp after Close: %v, want ErrSessionClosed", err)
			}
		})
	}
}

// The server refuses a hello it cannot open, an unknown id, and an id
// that is not the authenticated peer's.
func TestSessionHelloRefused(t *testing.T) {
	srv := startSessionServer(t, testnet.Transports[0].Listen)
	server := testnet.Entry(t, "server")
	wrongKey := server
	wrongKey.PublicKey = testnet.Entry(t, "outsider").PublicKey
	for _, c := range []struct {
		name   string
		host   identity.ID // the authenticated peer
		self   identity.ID // the id the hello claims (and whose key opens the answer)
		server identity.Entry
		want   error
		status string
	}{
		{"id of another peer", "2000", "1000", server, protocol.ErrRefused, protocol.StatusPeerMismatch},
		{"unknown id", "outsider", "outsider", server, protocol.ErrRefused, protocol.StatusUnknownID},
		{"hello sealed to the wrong key", "1000", "1000", wrongKey, protocol.ErrRefused, protocol.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := srv.lg.Size()
			sess, err := openSession(t, testnet.ClientOf(t, c.host, srv.host), c.self, c.server)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.status) || sess != nil {
				t.Fatalf("got %v, want %v with status %s", err, c.want, c.status)
			}
			if srv.lg.Size() != before {
				t.Fatal("a refused session stamped something")
			}
		})
	}
	// A requester whose key is not its directory key cannot open the
	// session key the server sealed to the directory key.
	h := testnet.ClientOf(t, "1000", srv.host)
	_, err := OpenSession(testnet.Ctx(t), h, testkeys.Private(t, "2000"), testnet.Entry(t, "1000"), server, testnet.Trust(t, srv.dir), nil)
	if !errors.Is(err, protocol.ErrOpen) {
		t.Fatalf("wrong requester key: %v, want ErrOpen", err)
	}
}

func TestSessionOversizedFrames(t *testing.T) {
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := startSessionServer(t, tr.Listen)
			client := testnet.ClientOf(t, "1000", srv.host)
			t.Run("hello", func(t *testing.T) {
				s := testnet.RawStream(t, client, srv.host.ID(), protocol.SessionProtocolID)
				if _, err := s.Write(testnet.FrameHeader(protocol.MaxSessionHelloSize + 1)); err != nil {
					t.Fatal(err)
				}
				testnet.ExpectReset(t, s)
			})
			t.Run("request inside a session", func(t *testing.T) {
				sess := mustSession(t, client)
				if _, err := sess.Stamp(testnet.Ctx(t), docHash(1)); err != nil {
					t.Fatal(err)
				}
				// Queue a sealed request larger than MaxSessionRequestSize.
				sess.sends <- &sessionCall{req: &protocol.SessionRequest{ID: 99, Hash: make([]byte, protocol.MaxSessionRequestSize), Nonce: docNonce(1)}}
				_, err := sess.Stamp(testnet.Ctx(t), docHash(2))
				if err == nil || !strings.Contains(err.Error(), "session with server server ended") {
					t.Fatalf("stamp after an oversized request: %v, want the session ended", err)
				}
				if _, err := sess.Stamp(testnet.Ctx(t), docHash(3)); err == nil {
					t.Fatal("a reset session still stamps")
				}
			})
		})
	}
}

// Close with stamps in flight returns once they are answered, and every
// Stamp call returns.
func TestSessionCloseWithPending(t *testing.T) {
	srv := startSessionServer(t, testnet.Transports[1].Listen)
	sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))
	const n = 100
	errs := make(chan error, n)
	started := make(chan struct{}, n)
	for i := range n {
		go func() {
			started <- struct{}{}
			st, err := sess.Stamp(testnet.Ctx(t), docHash(i))
			if err == nil && !bytes.Equal(st.Statement.DocumentHash, docHash(i)) {
				err = fmt.Errorf("stamp %d for another hash", i)
			}
			errs <- err
		}()
	}
	for range n {
		<-started
	}
	closed := make(chan struct{})
	go func() { sess.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hangs with stamps pending")
	}
	ok := 0
	for range n {
		select {
		case err := <-errs:
			if err == nil {
				ok++
			} else if !errors.Is(err, ErrSessionClosed) && !strings.Contains(err.Error(), "session with server") {
				t.Errorf("pending stamp failed oddly: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a Stamp call hangs after Close")
		}
	}
	t.Logf("%d of %d stamps answered before the session closed", ok, n)
	if srv.lg.Size() < uint64(ok) {
		t.Fatalf("%d stamps answered, log holds %d", ok, srv.lg.Size())
	}
}
