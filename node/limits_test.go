package node

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/tsnode/tsnode/node/stamp"
)

// TestManyStreamsFromOnePeer: one requester may hold far more stamp
// sessions, and one-shot stamps, at once than go-libp2p's default
// per-peer limits allow (64 streams and 16 MiB per protocol and peer):
// none is reset.
func TestManyStreamsFromOnePeer(t *testing.T) {
	const sessions, oneShots = 80, 100
	s := startSwarm(t, transports[0].listen)
	r := s.requester(t, t.TempDir())
	ctx := ctxT(t)

	var open []*stamp.Session
	t.Cleanup(func() {
		for _, sess := range open {
			sess.Close()
		}
	})
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, sessions+oneShots)
	for i := range sessions {
		wg.Go(func() {
			sess, err := stamp.OpenSession(ctx, r.Host(), r.id.Key, r.id.Self, r.stamp.Server, r.trust, nil)
			if err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
				return
			}
			mu.Lock()
			open = append(open, sess)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(open) != sessions {
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Fatalf("%d of %d sessions opened", len(open), sessions)
	}
	// Every session works, while all of them are open, alongside many
	// one-shot stamps in flight.
	for i, sess := range open {
		wg.Go(func() {
			h := sha256.Sum256(fmt.Appendf(nil, "session %d", i))
			if _, err := sess.Stamp(ctx, h[:]); err != nil {
				errs <- fmt.Errorf("stamp on session %d: %w", i, err)
			}
		})
	}
	for i := range oneShots {
		wg.Go(func() {
			h := sha256.Sum256(fmt.Appendf(nil, "one-shot %d", i))
			if _, err := r.stamp.Stamp(ctx, h[:]); err != nil {
				errs <- fmt.Errorf("one-shot %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
