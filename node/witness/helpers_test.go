package witness

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/protocol"
)

// Test-only ids: the authority, the witnesses, a requester.
var (
	allIDs    = []identity.ID{"server", "1000", "2000", "3000", "3001", "3002"}
	witnesses = []identity.ID{"3000", "3001", "3002"}
)

type testAuthority struct {
	host host.Host
	auth *authority.Authority
	g    *Gossip
	pub  *Publisher
}

// startAuthority runs the authority "server" on a fresh log, with its log
// protocol and a publisher; opts tune the authority (its clock).
func startAuthority(t *testing.T, listen string, interval, heartbeat time.Duration, opts ...authority.Option) *testAuthority {
	t.Helper()
	dir := testkeys.Directory(t, allIDs...)
	h := testnet.NewHost(t, "server", listen)
	lg := testnet.OpenLog(t, t.TempDir())
	a, err := authority.New(lg, authority.SignerFor(testkeys.Private(t, "server")), testnet.Entry(t, "server"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ls, err := logsync.New(h, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	g := newGossip(t, h, dir)
	p, err := NewPublisher(g, "server", a, interval, heartbeat)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &testAuthority{host: h, auth: a, g: g, pub: p}
}

func newGossip(t *testing.T, h host.Host, dir *identity.Directory, opts ...GossipOption) *Gossip {
	t.Helper()
	g, err := NewGossip(h, dir, testnet.Trust(t, dir), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

type testWitness struct {
	id   identity.ID
	host host.Host
	g    *Gossip
	w    *Witness
	dir  string
	m    *countMetrics
}

// startWitness runs witness id with its state in dataDir, following the
// authority on server (its host), connected to peers.
func startWitness(t *testing.T, id identity.ID, listen, dataDir string, server host.Host, peers ...host.Host) *testWitness {
	t.Helper()
	dir := testkeys.Directory(t, allIDs...)
	h := testnet.NewHost(t, id, listen)
	for _, p := range append([]host.Host{server}, peers...) {
		if err := h.Connect(testnet.Ctx(t), peer.AddrInfo{ID: p.ID(), Addrs: p.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	m := &countMetrics{}
	g := newGossip(t, h, dir, WithMetrics(m))
	trust := testnet.Trust(t, dir)
	w, err := New(g, Config{
		Self: testnet.Entry(t, id), Key: testkeys.Private(t, id), Trust: trust, DataDir: dataDir,
		Logs:       map[identity.ID][]*logsync.Client{"server": {logsync.NewClient(h, testnet.Entry(t, "server"), trust)}},
		StaleAfter: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &testWitness{id: id, host: h, g: g, w: w, dir: dataDir, m: m}
}

// stamp adds one stamp of random content and returns it.
func stamp(t *testing.T, a *authority.Authority) *authority.Stamp {
	t.Helper()
	hash, nonce := make([]byte, 32), make([]byte, 32)
	rand.Read(hash)
	rand.Read(nonce)
	st, err := a.Add(testnet.Ctx(t), authority.Entry{Requester: testnet.Entry(t, "1000"), Hash: hash, Nonce: nonce})()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func policy(t *testing.T, k int, ids ...identity.ID) *protocol.WitnessPolicy {
	t.Helper()
	p, err := protocol.NewWitnessPolicy(testkeys.Directory(t, allIDs...), k, DefaultClockTolerance, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func hostsOf(ws []*testWitness) []host.Host {
	var hs []host.Host
	for _, w := range ws {
		hs = append(hs, w.host)
	}
	return hs
}

func connect(t *testing.T, from, to host.Host) {
	t.Helper()
	if err := from.Connect(testnet.Ctx(t), peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
		t.Fatal(err)
	}
}
