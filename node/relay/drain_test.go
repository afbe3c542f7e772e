package relay

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// gatedReader gives its first n bytes, then blocks until open is closed.
type gatedReader struct {
	r    io.Reader
	n    int
	open chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		<-g.open
		return g.r.Read(p)
	}
	p = p[:min(len(p), g.n)]
	n, err := g.r.Read(p)
	g.n -= n
	return n, err
}

// A verifier that drains lets the relay in progress get its verdict and
// resets a new one; Drain returns once the verdict is sent.
func TestDrainFinishesRelays(t *testing.T) {
	f := newRelayFixture(t)
	client := testnet.ClientOf(t, "1000", f.verifier)
	c := &Client{Host: client, Self: testnet.Entry(t, "1000"), Verifier: testnet.Entry(t, "2000")}
	rc, err := protocol.ParseReceipt(f.receipt)
	if err != nil {
		t.Fatal(err)
	}
	doc := &gatedReader{r: bytes.NewReader(f.doc), n: protocol.ChunkSize, open: make(chan struct{})}
	type result struct {
		v   *protocol.Verdict
		err error
	}
	relayed := make(chan result, 1)
	go func() {
		v, err := c.Relay(testnet.Ctx(t), rc, doc, int64(len(f.doc)))
		relayed <- result{v, err}
	}()
	// Wait until the verifier is inside the relay.
	deadline := time.Now().Add(10 * time.Second)
	for f.svc.drain.Active() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f.svc.drain.Active() == 0 {
		t.Fatal("the relay never reached the verifier")
	}
	drained := make(chan error, 1)
	go func() { drained <- f.svc.Drain(context.Background()) }()
	<-f.svc.drain.Stopping()

	// A new relay while draining is reset, without a verdict.
	other := &Client{Host: testnet.ClientOf(t, "1000", f.verifier), Self: testnet.Entry(t, "1000"), Verifier: testnet.Entry(t, "2000")}
	t0 := time.Now()
	v, err := other.Relay(testnet.Ctx(t), rc, bytes.NewReader(f.doc), int64(len(f.doc)))
	t.Logf("new relay while draining: %v after %v", err, time.Since(t0))
	if err == nil {
		t.Fatalf("a relay started while draining got verdict %v", v)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a relay in progress", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(doc.open)
	r := <-relayed
	if r.err != nil || !r.v.Valid() {
		t.Fatalf("relay in progress during the drain: %v, %v; want a valid verdict", r.v, r.err)
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after the last verdict")
	}
}
