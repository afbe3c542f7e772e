package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

var witnessIDs = []identity.ID{"3000", "3001", "3002"}

// witnessSwarm is a server, three witnesses (peered in a chain) and a
// verifier that requires cosignatures, all with the directory gater.
type witnessSwarm struct {
	dir       *identity.Directory
	server    *Service
	witnesses []*Service
	verifier  *Service
	verdicts  *verdictLog
	policy    *protocol.WitnessPolicy
}

func startWitnessSwarm(t *testing.T, listen string, k int, serverOpts ...authority.Option) *witnessSwarm {
	t.Helper()
	s := &witnessSwarm{dir: testkeys.Directory(t, "server", "1000", "2000", "3000", "3001", "3002"), verdicts: &verdictLog{}}
	var err error
	s.server, err = StartServerWith(testIdentity(t, "server", s.dir), []string{listen}, t.TempDir(),
		ServerOptions{Authority: serverOpts, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.server.Close() })
	serverAddr := FullAddrs(s.server.Host)[0].String()
	trust := serverTrust(t, s.dir)
	for i, id := range witnessIDs {
		var peers []string
		if i > 0 {
			peers = []string{FullAddrs(s.witnesses[i-1].Host)[0].String()}
		}
		w, err := StartWitness(testIdentity(t, id, s.dir), []string{listen}, WitnessOptions{
			Trust: trust, Servers: []string{serverAddr}, Peers: peers, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		s.witnesses = append(s.witnesses, w)
	}
	if s.policy, err = protocol.NewWitnessPolicy(s.dir, k, 5*time.Second, witnessIDs...); err != nil {
		t.Fatal(err)
	}
	s.verifier, err = StartVerifier(testIdentity(t, "2000", s.dir), []string{listen},
		VerifierOptions{Trust: trust, Witnesses: s.policy, OnVerdict: s.verdicts.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.verifier.Close() })
	return s
}

func (s *witnessSwarm) requester(t *testing.T, policy *protocol.WitnessPolicy, verifier bool) *Requester {
	t.Helper()
	cfg := RequesterConfig{Trust: serverTrust(t, s.dir), ServerID: "server", ServerAddr: addrOf(s.server),
		OutDir: t.TempDir(), Witnesses: policy}
	if verifier {
		cfg.VerifierID, cfg.VerifierAddr = "2000", addrOf(s.verifier)
	}
	r, err := NewRequester(testIdentity(t, "1000", s.dir), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestWitnessedStampAndRelay: a requester that requires 2 of 3 witnesses
// writes a v3 receipt, and the verifier that requires them too says
// valid; over TCP and QUIC, with the directory gater on every host.
func TestWitnessedStampAndRelay(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startWitnessSwarm(t, tr.listen, 2)
			r := s.requester(t, s.policy, true)
			time.Sleep(1500 * time.Millisecond) // the topic's mesh forms
			doc := writeDoc(t, t.TempDir(), "a.txt", []byte("witnessed"))
			res := r.Process(ctxT(t), doc)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if res.Receipt.Format != protocol.ReceiptFormatV3 || len(res.Receipt.Cosignatures) != 2 {
				t.Fatalf("receipt %s with %d cosignatures, want v3 with 2", res.Receipt.Format, len(res.Receipt.Cosignatures))
			}
			if res.Verdict == nil || !res.Verdict.Valid() || !strings.Contains(res.Verdict.Message, "witnessed by 2 of 2") {
				t.Fatalf("verdict %v, want valid and witnessed", res.Verdict)
			}
			rc, err := protocol.ReadReceiptFile(res.ReceiptPath)
			if err != nil || rc.Format != protocol.ReceiptFormatV3 {
				t.Fatalf("receipt on disk: %v, %v", rc, err)
			}
			for _, w := range s.witnesses {
				for _, c := range w.Ready() {
					if err := c.Err(); err != nil {
						t.Errorf("witness check %s: %v", c.Name, err)
					}
				}
			}
		})
	}
}

// TestUnwitnessedRelayRefused: a verifier that requires cosignatures
// answers not-witnessed to a v2 receipt.
func TestUnwitnessedRelayRefused(t *testing.T) {
	s := startWitnessSwarm(t, transports[0].listen, 2)
	r := s.requester(t, nil, true)
	res := r.Process(ctxT(t), writeDoc(t, t.TempDir(), "b.txt", []byte("plain")))
	if res.Verdict == nil || res.Verdict.Code != protocol.VerdictNotWitnessed {
		t.Fatalf("verdict %v (err %v), want %s", res.Verdict, res.Err, protocol.VerdictNotWitnessed)
	}
}

// TestWitnessedStampClockAhead: a server whose clock is an hour ahead
// gets no cosignature; the requester's stamp fails saying why, and the
// v2 receipt is still written.
func TestWitnessedStampClockAhead(t *testing.T) {
	s := startWitnessSwarm(t, transports[0].listen, 1,
		authority.WithClock(func() time.Time { return time.Now().Add(time.Hour) }), authority.WithClockTolerance(2*time.Hour))
	policy, err := protocol.NewWitnessPolicy(s.dir, 1, 5*time.Second, "3000")
	if err != nil {
		t.Fatal(err)
	}
	r := s.requester(t, policy, false)
	time.Sleep(1500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	res := r.Stamp(ctx, writeDoc(t, t.TempDir(), "c.txt", []byte("late")))
	switch {
	case res.Err == nil:
		t.Fatal("a head an hour ahead was witnessed")
	case !errors.Is(res.Err, ErrNotWitnessed) || !strings.Contains(res.Err.Error(), "ahead of this clock") ||
		!strings.Contains(res.Err.Error(), "no cosignature from 3000"):
		t.Fatalf("error %q, want not witnessed, naming 3000 and the clock", res.Err)
	case res.ReceiptPath == "":
		t.Fatal("no v2 receipt written")
	}
	if rc, err := protocol.ReadReceiptFile(res.ReceiptPath); err != nil || rc.Format != protocol.ReceiptFormatV2 {
		t.Fatalf("receipt on disk: %v, %v; want the v2 receipt", rc, err)
	}
}

// TestWitnessOptionErrors: what a witness is given wrongly is refused
// before it starts, naming the flag's value.
func TestWitnessOptionErrors(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000", "3000")
	trust := serverTrust(t, dir)
	id := testIdentity(t, "3000", dir)
	other := fmt.Sprintf("/ip4/127.0.0.1/tcp/1/p2p/%s", testkeys.Directory(t, "outsider").Entries()[0].PeerID)
	requester := fmt.Sprintf("/ip4/127.0.0.1/tcp/1/p2p/%s", peerOf(t, dir, "1000"))
	for name, c := range map[string]struct {
		o    WitnessOptions
		want string
	}{
		"no server":          {WitnessOptions{Trust: trust, DataDir: t.TempDir()}, "no --server for the trusted authority server"},
		"bad server":         {WitnessOptions{Trust: trust, DataDir: t.TempDir(), Servers: []string{"not-a-multiaddr"}}, `--server "not-a-multiaddr"`},
		"stranger server":    {WitnessOptions{Trust: trust, DataDir: t.TempDir(), Servers: []string{other}}, "not in the identity directory"},
		"untrusted server":   {WitnessOptions{Trust: trust, DataDir: t.TempDir(), Servers: []string{requester}}, "not a trusted authority"},
		"peer without /p2p/": {WitnessOptions{Trust: trust, DataDir: t.TempDir(), Servers: []string{"/ip4/127.0.0.1/tcp/1"}, Peers: []string{"/ip4/127.0.0.1/tcp/2"}}, "--peer"},
		"no data":            {WitnessOptions{Trust: trust, Servers: []string{"/ip4/127.0.0.1/tcp/1"}}, "no data directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := StartWitness(id, []string{LoopbackListen}, c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func peerOf(t *testing.T, dir *identity.Directory, id identity.ID) peer.ID {
	t.Helper()
	e, err := dir.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	return e.PeerID
}

// TestVerifierCosigns: a verifier started with witnessing cosigns the
// server's heads and reports them in its readiness; a requester that
// requires its cosignature gets it.
func TestVerifierCosigns(t *testing.T) {
	s := startWitnessSwarm(t, transports[0].listen, 1)
	trust := serverTrust(t, s.dir)
	if err := s.verifier.StartWitnessing(testIdentity(t, "2000", s.dir), WitnessOptions{
		Trust: trust, Servers: []string{FullAddrs(s.server.Host)[0].String()}, DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	policy, err := protocol.NewWitnessPolicy(s.dir, 1, 5*time.Second, "2000")
	if err != nil {
		t.Fatal(err)
	}
	r := s.requester(t, policy, false)
	time.Sleep(1500 * time.Millisecond)
	res := r.Stamp(ctxT(t), writeDoc(t, t.TempDir(), "d.txt", []byte("cosigned by the verifier")))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := res.Receipt.Cosignatures; len(got) != 1 || got[0].WitnessID != "2000" {
		t.Fatalf("cosignatures %v, want one by 2000", got)
	}
	names := map[string]bool{}
	for _, c := range s.verifier.Ready() {
		names[c.Name] = true
	}
	if !names["witness"] {
		t.Fatalf("the verifier's readiness has no witness check: %v", names)
	}
}

// TestMDNSFindsWitnesses: two witnesses given no --peer find each other
// by mDNS, where the network carries multicast.
func TestMDNSFindsWitnesses(t *testing.T) {
	s := startWitnessSwarm(t, transports[0].listen, 1)
	trust := serverTrust(t, s.dir)
	server := FullAddrs(s.server.Host)[0].String()
	var ws []*Service
	for _, id := range []identity.ID{"3001", "3002"} {
		dir := testkeys.Directory(t, "server", "1000", "2000", "3000", "3001", "3002")
		w, err := StartWitness(testIdentity(t, id, dir), []string{"/ip4/0.0.0.0/tcp/0"}, WitnessOptions{
			Trust: trust, Servers: []string{server}, DataDir: t.TempDir(), MDNS: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		ws = append(ws, w)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ws[0].Host.Network().Connectedness(ws[1].Host.ID()) != network.Connected {
		if time.Now().After(deadline) {
			t.Skip("no mDNS peer found in 10 s: this network carries no multicast")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
