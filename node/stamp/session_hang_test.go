package stamp

import (
	"bufio"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// hangingSessionServer takes sessions and then answers nothing, ever;
// with acceptHello it runs the key exchange first. Its streams are reset
// at cleanup.
func hangingSessionServer(t *testing.T, acceptHello bool) host.Host {
	t.Helper()
	srv := &sessionHandler{Key: testkeys.Private(t, "server"), Self: testnet.Entry(t, "server"), Dir: testkeys.Directory(t, "server", "1000")}
	h := testnet.NewHost(t, "server", testnet.Transports[0].Listen)
	var mu sync.Mutex
	var held []network.Stream
	h.SetStreamHandler(protocol.SessionProtocolID, func(s network.Stream) {
		mu.Lock()
		held = append(held, s)
		mu.Unlock()
		if acceptHello {
			_, _, _, _ = srv.accept(s, bufio.NewReader(s), s.Conn().RemotePeer(), true)
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range held {
			s.Reset()
		}
	})
	return h
}

// A session still in its key exchange gives up as soon as its context
// ends, not when the 30 s hello timeout runs out.
func TestOpenSessionAbortsOnCancel(t *testing.T) {
	client := testnet.ClientOf(t, "1000", hangingSessionServer(t, false))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := OpenSession(ctx, client, testkeys.Private(t, "1000"), testnet.Entry(t, "1000"), testnet.Entry(t, "server"), testnet.Trust(t, testkeys.Directory(t, "server")), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenSession after cancel: %v, want context.Canceled", err)
	}
	if Classify(err) != Final {
		t.Errorf("a cancelled hello is %v, want Final: the caller gave up", Classify(err))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("OpenSession returned %v after its context ended", d)
	}
}

// Close of a session whose server hangs, with no stamp awaited, resets
// the stream after a short grace instead of waiting 30 s.
func TestCloseDoesNotWaitForAHangingServer(t *testing.T) {
	client := testnet.ClientOf(t, "1000", hangingSessionServer(t, true))
	s := mustSession(t, client)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Stamp(ctx, docHash(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stamp of a hanging server: %v, want the deadline", err)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > closeGrace+2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if !errors.Is(s.Err(), ErrSessionClosed) {
		t.Errorf("Err after Close: %v", s.Err())
	}
}
