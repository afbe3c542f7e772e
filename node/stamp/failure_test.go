package stamp

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// TestClassifyFailures: a stamp whose request was read and then lost to
// a reset may have been logged (MaybeRead); one asked of a session that
// already ended was never sent (NotRead); a refusal for shutdown or
// clock-behind is NotRead; a bad answer is Final.
func TestClassifyFailures(t *testing.T) {
	srv := startFakeSessionServer(t, func(req *protocol.SessionRequest, st *protocol.LogStamp, out *protocol.SessionCipher) [][]byte {
		return nil // read, logged, never answered
	})
	client := testnet.ClientOf(t, "1000", srv.host)
	sess := mustSession(t, client)
	done := make(chan error, 1)
	go func() {
		_, err := sess.Stamp(testnet.Ctx(t), hashOf(1))
		done <- err
	}()
	<-srv.received
	// The server goes away without answering: the stream fails.
	if err := srv.host.Network().ClosePeer(client.ID()); err != nil {
		t.Fatal(err)
	}
	err := <-done
	if err == nil || Classify(err) != MaybeRead {
		t.Fatalf("reset after the request was read: %v, classified %v, want MaybeRead", err, Classify(err))
	}
	_, err = sess.Stamp(testnet.Ctx(t), hashOf(2))
	if err == nil || Classify(err) != NotRead {
		t.Fatalf("stamp on an ended session: %v, classified %v, want NotRead", err, Classify(err))
	}
	for _, status := range []string{protocol.StatusShuttingDown, protocol.StatusClockBehind} {
		err := fmt.Errorf("wrapped: %w", protocol.Refusal("server", []byte(status), []byte("x")))
		if Classify(err) != NotRead {
			t.Errorf("%s refusal classified %v, want NotRead", status, Classify(err))
		}
	}
	if c := Classify(fmt.Errorf("check: %w", protocol.ErrReplyMismatch)); c != Final {
		t.Errorf("a bad answer classified %v, want Final", c)
	}
	if c := Classify(errors.New("refused: unknown-requester")); c != Final {
		t.Errorf("another refusal classified %v, want Final", c)
	}
}
