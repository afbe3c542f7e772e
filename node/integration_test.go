package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// Integration tests: real libp2p hosts on 127.0.0.1 over TCP and QUIC,
// with the test-only keys of internal/testkeys.

var transports = []struct{ name, listen string }{
	{"tcp", "/ip4/127.0.0.1/tcp/0"},
	{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
}

func testIdentity(t testing.TB, id identity.ID, dir *identity.Directory) *Identity {
	t.Helper()
	ident, err := NewIdentity(id, testkeys.Private(t, id), dir)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

// verdictLog records what a verifier decided.
type verdictLog struct {
	mu sync.Mutex
	vs []*protocol.Verdict
}

func (l *verdictLog) add(_ peer.ID, v *protocol.Verdict) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.vs = append(l.vs, v)
}

type swarm struct {
	dir      *identity.Directory
	server   *Service
	verifier *Service
	verdicts *verdictLog
	store    string
}

func startSwarm(t testing.TB, listen string) *swarm {
	t.Helper()
	dir := testkeys.Directory(t, "server", "1000", "2000")
	s := &swarm{dir: dir, verdicts: &verdictLog{}, store: t.TempDir()}
	var err error
	if s.server, err = StartServer(testIdentity(t, "server", dir), []string{listen}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.server.Close() })
	if s.verifier, err = StartVerifier(testIdentity(t, "2000", dir), []string{listen}, VerifierOptions{Trust: serverTrust(t, dir), StoreDir: s.store, OnVerdict: s.verdicts.add}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.verifier.Close() })
	return s
}

func addrOf(svc *Service) string { return svc.Host.Addrs()[0].String() }

func (s *swarm) requester(t testing.TB, outDir string) *Requester {
	t.Helper()
	r, err := NewRequester(testIdentity(t, "1000", s.dir), RequesterConfig{
		Trust:    serverTrust(t, s.dir),
		ServerID: "server", ServerAddr: addrOf(s.server),
		VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
		OutDir: outDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func writeDoc(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStampAndRelay(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startSwarm(t, tr.listen)
			out := t.TempDir()
			r := s.requester(t, out)
			docs := t.TempDir()
			big := make([]byte, 3*protocol.MaxRelayFrameSize+12345) // many chunks
			rand.Read(big)
			paths := []string{
				writeDoc(t, docs, "small.txt", []byte("line one\r\nline two\n")),
				writeDoc(t, docs, "empty", nil),
				writeDoc(t, docs, "big.bin", big),
			}
			var serials []uint64
			for _, p := range paths {
				res := r.Process(ctxT(t), p)
				if !res.OK() {
					t.Fatalf("%s: %v (verdict %v)", p, res.Err, res.Verdict)
				}
				want, _ := protocol.HashFile(p)
				if !bytes.Equal(res.Hash, want) {
					t.Fatalf("%s: hash %x, want %x", p, res.Hash, want)
				}
				if res.ReceiptPath != filepath.Join(out, filepath.Base(p)+".receipt") {
					t.Fatalf("receipt at %s", res.ReceiptPath)
				}
				rc, err := protocol.ReadReceiptFile(res.ReceiptPath)
				if err != nil {
					t.Fatal(err)
				}
				st, err := rc.Verify(serverTrust(t, s.dir), want)
				if err != nil {
					t.Fatalf("saved receipt does not verify: %v", err)
				}
				serials = append(serials, st.Serial)
				// The verifier kept the document with its receipt.
				stored, err := os.ReadFile(filepath.Join(s.store, fmt.Sprintf("server-%d", rc.Serial), "document"))
				if err != nil {
					t.Fatal(err)
				}
				orig, _ := os.ReadFile(p)
				if !bytes.Equal(stored, orig) {
					t.Fatalf("%s: stored document differs", p)
				}
			}
			for i := 1; i < len(serials); i++ {
				if serials[i] <= serials[i-1] {
					t.Fatalf("serials not increasing: %v", serials)
				}
			}
			// All documents went over one connection to each peer.
			for _, p := range []peer.ID{s.server.Host.ID(), s.verifier.Host.ID()} {
				if n := len(r.Host().Network().ConnsToPeer(p)); n != 1 {
					t.Fatalf("%d connections to %s, want 1", n, p)
				}
			}
		})
	}
}

// serverTrust trusts the authority "server" with its key in dir.
func serverTrust(t testing.TB, dir *identity.Directory) *protocol.Trust {
	return testnet.Trust(t, dir, identity.ServerID)
}
