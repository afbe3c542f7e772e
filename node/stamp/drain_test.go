package stamp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// Draining under load: every stamp asked of an open session is either
// answered (and in the log) or fails as "server is shutting down", never
// with a bare end of stream or reset; then new sessions and one-shot
// requests are refused with shutting-down.
func TestDrainUnderLoad(t *testing.T) {
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := startSessionServer(t, tr.Listen)
			client := testnet.ClientOf(t, "1000", srv.host)
			// 4 sessions, 16 requesters on each, every one asking again as
			// soon as it is answered.
			const workers, perWorker = 64, 400
			sessions := make([]*Session, 4)
			for i := range sessions {
				sessions[i] = mustSession(t, client)
			}
			var ok sync.WaitGroup
			var mu sync.Mutex
			var answered, shuttingDown int
			var odd []error
			started := make(chan struct{}, workers)
			for w := range workers {
				sess := sessions[w%len(sessions)]
				ok.Add(1)
				go func() {
					defer ok.Done()
					started <- struct{}{}
					for i := range perWorker {
						_, err := sess.Stamp(testnet.Ctx(t), docHash(w*perWorker+i))
						mu.Lock()
						switch {
						case err == nil:
							answered++
						case errors.Is(err, protocol.ErrShuttingDown):
							shuttingDown++
						default:
							odd = append(odd, err)
						}
						mu.Unlock()
						if err != nil {
							return
						}
					}
				}()
			}
			for range workers {
				<-started
			}
			time.Sleep(300 * time.Millisecond) // let the load build up
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			t0 := time.Now()
			if err := srv.svc.Drain(ctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			took := time.Since(t0)
			ok.Wait()
			t.Logf("drained in %v: %d stamps answered, %d refused as shutting down", took, answered, shuttingDown)
			for _, err := range odd {
				t.Errorf("stamp failed otherwise than shutting down: %v", err)
			}
			if answered == 0 || shuttingDown == 0 {
				t.Errorf("answered %d, shutting down %d: the drain did not happen under load", answered, shuttingDown)
			}
			if srv.lg.Size() < uint64(answered) {
				t.Errorf("%d stamps answered, the log holds %d", answered, srv.lg.Size())
			}
			if took > 10*time.Second {
				t.Errorf("draining took %v", took)
			}

			// After the drain: new sessions and one-shot stamps are refused.
			if _, err := openSession(t, client, "1000", testnet.Entry(t, "server")); !errors.Is(err, protocol.ErrShuttingDown) {
				t.Errorf("new session while drained: %v, want shutting down", err)
			}
			oneShot := &OneShotClient{Host: client, Key: testkeys.Private(t, "1000"), Self: testnet.Entry(t, "1000"), Server: testnet.Entry(t, "server"), Trust: testnet.Trust(t, srv.dir)}
			if _, err := oneShot.Stamp(testnet.Ctx(t), docHash(1)); !errors.Is(err, protocol.ErrShuttingDown) {
				t.Errorf("one-shot stamp while drained: %v, want shutting down", err)
			}
		})
	}
}

// The §7.7 probe: a valid request followed by a violation. The server
// answers the stamp it took, then ends the session; the reply must reach
// the requester every time (a reset right after it could discard it).
func TestViolationKeepsReplies(t *testing.T) {
	const runs = 100
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := startSessionServer(t, tr.Listen)
			client := testnet.ClientOf(t, "1000", srv.host)
			lost := 0
			for run := range runs {
				if err := probeViolation(t, client, srv, run); err != nil {
					lost++
					t.Errorf("run %d: %v", run, err)
				}
			}
			if lost > 0 {
				t.Fatalf("%d of %d replies lost", lost, runs)
			}
		})
	}
}

func probeViolation(t *testing.T, client host.Host, srv *sessionServer, run int) error {
	t.Helper()
	rs, err := openRawSession(t, client, srv, byte(run))
	if err != nil {
		return err
	}
	s, r, out, in := rs.s, rs.r, rs.out, rs.in
	defer s.Reset()
	req := &protocol.SessionRequest{ID: 7, Hash: docHash(run), Nonce: docNonce(run)}
	// The request and the violation leave in one write.
	var buf []byte
	w := bufferWriter{&buf}
	_ = protocol.WriteFrame(w, out.Seal(req.Encode()))
	buf = append(buf, testnet.FrameHeader(protocol.MaxSessionRequestSize+1)...)
	if _, err := s.Write(buf); err != nil {
		return err
	}
	frame, err := protocol.ReadFrame(r, protocol.MaxSessionReplySize)
	if err != nil {
		return fmt.Errorf("reply to the stamp taken before the violation lost: %w", err)
	}
	plain, err := in.Open(frame)
	if err != nil {
		return err
	}
	rep, err := protocol.ParseSessionReply(plain)
	if err != nil {
		return err
	}
	if rep.ID != req.ID || rep.Status != protocol.StatusOK {
		return fmt.Errorf("reply %d %s, want %d ok", rep.ID, rep.Status, req.ID)
	}
	if _, err := r.ReadByte(); err == nil {
		return errors.New("more after the reply")
	}
	return nil
}

// rawSession is a session opened by hand, as "1000", for a test to
// write whatever it needs on its stream.
type rawSession struct {
	s       network.Stream
	r       *bufio.Reader
	out, in *protocol.SessionCipher // requests, replies
}

// openRawSession runs the hello and accept of a session (§7.2, §7.3)
// with a request key of bytes keyByte.
func openRawSession(t *testing.T, client host.Host, srv *sessionServer, keyByte byte) (*rawSession, error) {
	t.Helper()
	s := testnet.RawStream(t, client, srv.host.ID(), protocol.SessionProtocolID)
	requestKey := fill(protocol.SessionKeySize, keyByte)
	hello, err := protocol.SealSessionHello(testnet.Entry(t, "server").PublicKey, "1000", requestKey)
	if err != nil {
		return nil, err
	}
	if err := protocol.WriteFrame(s, hello); err != nil {
		return nil, err
	}
	r := bufio.NewReader(s)
	accept, err := protocol.ReadFrame(r, protocol.MaxSessionHelloSize)
	if err != nil {
		return nil, fmt.Errorf("no accept: %w", err)
	}
	f, err := protocol.DecodeRecord(accept, protocol.SessionAcceptTag, 2)
	if err != nil || string(f[0]) != protocol.StatusOK {
		return nil, fmt.Errorf("hello not accepted: %v", err)
	}
	pt, err := protocol.Open(testkeys.Private(t, "1000"), protocol.SessionKeyTag, f[1])
	if err != nil {
		return nil, err
	}
	kf, err := protocol.DecodeRecord(pt, protocol.SessionKeyTag, 1)
	if err != nil {
		return nil, err
	}
	out, _ := protocol.NewSessionCipher(requestKey, protocol.SessionRequestTag)
	in, _ := protocol.NewSessionCipher(kf[0], protocol.SessionReplyTag)
	return &rawSession{s: s, r: r, out: out, in: in}, nil
}

// stamp sends one request and reads its reply, which must be ok.
func (rs *rawSession) stamp(id uint64, i int) error {
	req := &protocol.SessionRequest{ID: id, Hash: docHash(i), Nonce: docNonce(i)}
	if err := protocol.WriteFrame(rs.s, rs.out.Seal(req.Encode())); err != nil {
		return err
	}
	frame, err := protocol.ReadFrame(rs.r, protocol.MaxSessionReplySize)
	if err != nil {
		return fmt.Errorf("no reply: %w", err)
	}
	plain, err := rs.in.Open(frame)
	if err != nil {
		return err
	}
	rep, err := protocol.ParseSessionReply(plain)
	if err != nil {
		return err
	}
	if rep.ID != id || rep.Status != protocol.StatusOK {
		return fmt.Errorf("reply %d %s (%s), want %d ok", rep.ID, rep.Status, rep.Message, id)
	}
	return nil
}

type bufferWriter struct{ b *[]byte }

func (w bufferWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
