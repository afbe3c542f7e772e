package node

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/relay"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

// stampDoc gets a valid receipt for data through r.
func stampDoc(t *testing.T, r *Requester, data []byte) *protocol.Receipt {
	t.Helper()
	h, _ := protocol.HashReader(strings.NewReader(string(data)))
	rc, err := r.stamp.Stamp(ctxT(t), h)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func relayDoc(t *testing.T, r *Requester, rc *protocol.Receipt, data []byte) *protocol.Verdict {
	t.Helper()
	v, err := r.relay.Relay(ctxT(t), rc, strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifierRefusesTampering(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	r := s.requester(t, t.TempDir())
	doc := []byte("the original document")

	t.Run("tampered signature", func(t *testing.T) {
		rc := stampDoc(t, r, doc)
		sig, _ := base64.StdEncoding.DecodeString(rc.Signature)
		sig[100] ^= 1
		rc.Signature = base64.StdEncoding.EncodeToString(sig)
		if v := relayDoc(t, r, rc, doc); v.Code != protocol.VerdictBadSignature {
			t.Fatalf("verdict %v, want %s", v, protocol.VerdictBadSignature)
		}
	})
	t.Run("tampered document", func(t *testing.T) {
		rc := stampDoc(t, r, doc)
		if v := relayDoc(t, r, rc, []byte("the original documenT")); v.Code != protocol.VerdictHashMismatch {
			t.Fatalf("verdict %v, want %s", v, protocol.VerdictHashMismatch)
		}
	})
	t.Run("tampered time", func(t *testing.T) {
		rc := stampDoc(t, r, doc)
		// Change the last digit of the nanoseconds (to another digit:
		// replacing a 9 by a 9 tampered with nothing, one run in ten).
		last := rc.Time[len(rc.Time)-2]
		rc.Time = rc.Time[:len(rc.Time)-2] + string('0'+(last-'0'+1)%10) + "Z"
		v := relayDoc(t, r, rc, doc)
		if v.Code != protocol.VerdictMalformedReceipt || !strings.Contains(v.Message, "time") {
			t.Fatalf("verdict %v, want %s naming the time", v, protocol.VerdictMalformedReceipt)
		}
	})
	t.Run("untouched", func(t *testing.T) {
		if v := relayDoc(t, r, stampDoc(t, r, doc), doc); !v.Valid() {
			t.Fatalf("verdict %v", v)
		}
	})
	// Nothing invalid was stored.
	entries, _ := os.ReadDir(s.store)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "server-") {
			t.Errorf("unexpected entry %s in store", e.Name())
		}
	}
	if len(entries) != 1 {
		t.Errorf("store holds %d documents, want only the valid one", len(entries))
	}
}

func TestUnknownPeerIsRefused(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startSwarm(t, tr.listen)
			// The outsider knows the server, but the server does not know it.
			outDir := testkeys.Directory(t, "server", "2000", "outsider")
			r, err := NewRequester(testIdentity(t, "outsider", outDir), RequesterConfig{
				Trust:    serverTrust(t, outDir),
				ServerID: "server", ServerAddr: addrOf(s.server),
				VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
				MaxTries: 2,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			// With TLS the dialer may think it is connected before the
			// server's gater drops it, so judge by what follows.
			_ = r.Connect(ctxT(t))
			res := r.Process(ctxT(t), writeDoc(t, t.TempDir(), "doc", []byte("x")))
			if res.Err == nil || res.Receipt != nil || !strings.Contains(res.Err.Error(), "stamping failed") {
				t.Fatalf("outsider got a stamp: %+v", res)
			}
			if n := len(s.server.Host.Network().ConnsToPeer(r.Host().ID())); n != 0 {
				t.Fatalf("server kept %d connections from an unknown peer", n)
			}
		})
	}
}

func TestClaimedIDMustMatchPeer(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	// Peer 2000 sends a request claiming to be 1000.
	r2000, err := NewRequester(testIdentity(t, "2000", s.dir), RequesterConfig{
		Trust:    serverTrust(t, s.dir),
		ServerID: "server", ServerAddr: addrOf(s.server),
		VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r2000.Close()
	self1000, _ := s.dir.Lookup("1000")
	server, _ := s.dir.Lookup("server")
	c := &stamp.OneShotClient{Host: r2000.Host(), Key: testkeys.Private(t, "1000"), Self: self1000, Server: server, Trust: serverTrust(t, s.dir)}
	if err := r2000.Host().Connect(ctxT(t), r2000.server); err != nil {
		t.Fatal(err)
	}
	_, err = c.Stamp(ctxT(t), make([]byte, protocol.HashSize))
	if !errors.Is(err, protocol.ErrRefused) || !strings.Contains(err.Error(), protocol.StatusPeerMismatch) {
		t.Fatalf("got %v, want a %s refusal", err, protocol.StatusPeerMismatch)
	}
}

func TestVerifierWithWrongServerKey(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	r := s.requester(t, t.TempDir())
	doc := []byte("doc")
	rc := stampDoc(t, r, doc)

	// A second verifier 2000 whose directory holds another key for "server".
	wrongDir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{
		"server": &testkeys.Private(t, "outsider").PublicKey,
		"1000":   &testkeys.Private(t, "1000").PublicKey,
		"2000":   &testkeys.Private(t, "2000").PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := StartVerifier(testIdentity(t, "2000", wrongDir), []string{transports[0].listen}, VerifierOptions{Trust: serverTrust(t, wrongDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Close()
	verifier, info, err := ResolvePeer(s.dir, "2000", addrOf(v2))
	if err != nil {
		t.Fatal(err)
	}
	// Both verifiers share a peer ID; make sure the stream goes to v2:
	// stop the first, drop the requester's connection to it and its
	// address, then connect to v2.
	s.verifier.Close()
	if err := r.Host().Network().ClosePeer(verifier.PeerID); err != nil {
		t.Fatal(err)
	}
	r.Host().Peerstore().ClearAddrs(verifier.PeerID)
	if err := r.Host().Connect(ctxT(t), info); err != nil {
		t.Fatal(err)
	}
	c := relay.NewClient(r.Host(), r.relay.Self, verifier)
	v, err := c.Relay(ctxT(t), rc, strings.NewReader(string(doc)), int64(len(doc)))
	if err != nil {
		t.Fatal(err)
	}
	if v.Code != protocol.VerdictWrongServerKey {
		t.Fatalf("verdict %v, want %s", v, protocol.VerdictWrongServerKey)
	}
}

func TestServerDown(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	serverAddr := addrOf(s.server)
	s.server.Close()
	r, err := NewRequester(testIdentity(t, "1000", s.dir), RequesterConfig{
		Trust:    serverTrust(t, s.dir),
		ServerID: "server", ServerAddr: serverAddr,
		VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
		MaxTries: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Connect(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "cannot reach server server") || !strings.Contains(err.Error(), "connecting failed after 3 tries") {
		t.Fatalf("got %v, want cannot reach server after 3 tries", err)
	}
}

func TestVerifierDown(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	out := t.TempDir()
	r := s.requester(t, out)
	r.maxTries = 3
	s.verifier.Close()
	doc := writeDoc(t, t.TempDir(), "doc.txt", []byte("x"))
	res := r.Process(ctxT(t), doc)
	if res.OK() || res.Err == nil || !strings.Contains(res.Err.Error(), "relay failed") || res.RelayTries != 3 {
		t.Fatalf("result %+v, want relay failure after 3 tries", res)
	}
	// The stamp itself succeeded and its receipt was kept.
	if _, err := os.Stat(filepath.Join(out, "doc.txt.receipt")); err != nil {
		t.Fatalf("receipt not kept: %v", err)
	}
}

func TestPeerIDInAddrMustMatchDirectory(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000", "2000")
	v, _ := dir.Lookup("2000")
	s, _ := dir.Lookup("server")
	if _, _, err := ResolvePeer(dir, "server", "/ip4/127.0.0.1/tcp/1/p2p/"+v.PeerID.String()); err == nil || !strings.Contains(err.Error(), "names peer") {
		t.Fatalf("mismatching /p2p/ accepted: %v", err)
	}
	e, info, err := ResolvePeer(dir, "server", "/ip4/127.0.0.1/tcp/1/p2p/"+s.PeerID.String())
	if err != nil || e.ID != "server" || info.ID != s.PeerID || info.Addrs[0].String() != "/ip4/127.0.0.1/tcp/1" {
		t.Fatalf("ResolvePeer: %v %v %v", e, info, err)
	}
	if _, info, err := ResolvePeer(dir, "server", "/dns4/example.org/udp/7400/quic-v1"); err != nil || info.ID != s.PeerID {
		t.Fatalf("dns multiaddr without /p2p/: %v", err)
	}
	for _, bad := range []string{"127.0.0.1:7400", "", "/p2p/" + s.PeerID.String()} {
		if _, _, err := ResolvePeer(dir, "server", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, _, err := ResolvePeer(dir, "nobody", "/ip4/127.0.0.1/tcp/1"); !errors.Is(err, identity.ErrUnknownID) {
		t.Errorf("unknown id: %v", err)
	}
}
