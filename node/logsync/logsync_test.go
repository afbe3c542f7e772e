package logsync

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/host"
)

// logServer is a real server of the log protocol: an authority on a log
// in t.TempDir().
type logServer struct {
	host   host.Host
	signer *authority.Authority
	dir    *identity.Directory
}

func startLogServer(t *testing.T, listen string) *logServer {
	t.Helper()
	lg := testnet.OpenLog(t, t.TempDir())
	signer, err := authority.New(lg, testkeys.Private(t, "server"), testnet.Entry(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { signer.Close() })
	h := testnet.NewHost(t, "server", listen)
	svc, err := New(h, signer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return &logServer{host: h, signer: signer, dir: testkeys.Directory(t, "server", "1000", "2000")}
}

// submit stamps document i and waits for it.
func (s *logServer) submit(t *testing.T, i int) *protocol.LogStamp {
	t.Helper()
	hash := bytes.Repeat([]byte{byte(i)}, protocol.HashSize)
	st, err := s.signer.Add(testnet.Ctx(t), authority.Entry{Requester: testnet.Entry(t, "1000"), Hash: hash, Nonce: bytes.Repeat([]byte{7}, protocol.NonceSize)})()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameHead(a, b *protocol.SignedTreeHead) bool {
	return bytes.Equal(a.Encoded, b.Encoded) && bytes.Equal(a.Signature, b.Signature)
}

// The log protocol over real hosts: the latest signed head and
// consistency proofs between heads.
func TestLogFetch(t *testing.T) {
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			srv := startLogServer(t, tr.Listen)
			h := testnet.ClientOf(t, "1000", srv.host)
			server := testnet.Entry(t, "server")
			trust := testnet.Trust(t, srv.dir)
			c := &Client{Host: h, Server: server, Trust: trust}

			if _, _, err := c.Fetch(testnet.Ctx(t), 0, 0); !errors.Is(err, protocol.ErrRefused) || !errors.Is(err, ErrEmptyLog) {
				t.Fatalf("empty log: %v, want protocol.ErrRefused and ErrEmptyLog", err)
			}
			var stamps []*protocol.LogStamp
			for i := range 3 {
				stamps = append(stamps, srv.submit(t, i))
			}
			head, proof, err := c.Fetch(testnet.Ctx(t), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !sameHead(head, srv.signer.Head()) || head.Head.Size != 3 || len(proof) != 0 {
				t.Fatalf("Fetch = size %d, %d proof hashes; want the signer's head of size 3 and no proof", head.Head.Size, len(proof))
			}
			for i := 3; i < 8; i++ {
				stamps = append(stamps, srv.submit(t, i))
			}
			// Consistency between the heads of two receipts.
			old, err := stamps[2].Receipt().TreeHeadOf()
			if err != nil {
				t.Fatal(err)
			}
			nw, err := stamps[7].Receipt().TreeHeadOf()
			if err != nil {
				t.Fatal(err)
			}
			latest, proof, err := c.Fetch(testnet.Ctx(t), old.Head.Size, nw.Head.Size)
			if err != nil {
				t.Fatal(err)
			}
			if !sameHead(latest, srv.signer.Head()) || latest.Head.Size != 8 {
				t.Fatalf("latest head of size %d", latest.Head.Size)
			}
			if err := trust.CheckConsistency(old, nw, proof); err != nil {
				t.Fatalf("receipt heads: %v", err)
			}
			file, err := protocol.ParseConsistency(mustJSON(t, protocol.NewConsistency(old, nw, proof)))
			if err != nil {
				t.Fatal(err)
			}
			if err := file.Verify(testnet.Trust(t, srv.dir)); err != nil {
				t.Fatalf("consistency file: %v", err)
			}
			// The proof is bound to its sizes.
			if err := trust.CheckConsistency(stamps[1].Head, nw, proof); !errors.Is(err, protocol.ErrInconsistent) {
				t.Fatalf("proof for size 3 used for size 2: %v", err)
			}
			// new 0 means the latest head.
			latest, proof, err = c.Fetch(testnet.Ctx(t), 1, 0)
			if err != nil || trust.CheckConsistency(stamps[0].Head, latest, proof) != nil {
				t.Fatalf("from size 1 to the latest head: %v", err)
			}

			for _, bad := range []struct {
				name, want string
				old, new   uint64
			}{
				{"old beyond the log", "old size 9 is larger than new size 8", 9, 0},
				{"new beyond the log", "new size 9 is beyond", 1, 9},
				{"old after new", "old size 5 is larger than new size 3", 5, 3},
				// Without a proof asked for, too (§8.3).
				{"new beyond the log, no old", "new size 9 is beyond", 0, 9},
				{"new far beyond the log, no old", "new size 1000000000 is beyond", 0, 1e9},
				{"new the largest u64, no old", "is beyond", 0, 1<<64 - 1},
			} {
				if _, _, err := c.Fetch(testnet.Ctx(t), bad.old, bad.new); !errors.Is(err, protocol.ErrRefused) || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("%s: %v, want protocol.ErrRefused saying %s", bad.name, err, bad.want)
				}
			}
			// The latest head's size itself is fine, with or without a proof.
			for _, sizes := range [][2]uint64{{0, 8}, {8, 8}, {3, 8}} {
				if _, _, err := c.Fetch(testnet.Ctx(t), sizes[0], sizes[1]); err != nil {
					t.Errorf("old %d, new %d: %v", sizes[0], sizes[1], err)
				}
			}
			wrongDir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"server": testnet.Entry(t, "outsider").PublicKey})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := (&Client{Host: h, Server: server, Trust: testnet.Trust(t, wrongDir)}).Fetch(testnet.Ctx(t), 0, 0); !errors.Is(err, protocol.ErrWrongServerKey) {
				t.Errorf("another key trusted for the server: %v, want protocol.ErrWrongServerKey", err)
			}
			if _, _, err := (&Client{Host: h, Server: server, Trust: testnet.Trust(t, srv.dir, "1000")}).Fetch(testnet.Ctx(t), 0, 0); !errors.Is(err, protocol.ErrUntrustedSigner) {
				t.Errorf("server not trusted: %v, want protocol.ErrUntrustedSigner", err)
			}
			otherID := server
			otherID.ID = "2000"
			if _, _, err := (&Client{Host: h, Server: otherID, Trust: trust}).Fetch(testnet.Ctx(t), 0, 0); !errors.Is(err, protocol.ErrReplyMismatch) {
				t.Errorf("head of another server id: %v, want protocol.ErrReplyMismatch", err)
			}
			// A request frame over the maximum is answered with a reset.
			s := testnet.RawStream(t, h, srv.host.ID(), ID)
			if _, err := s.Write(testnet.FrameHeader(protocol.MaxLogRequestSize + 1)); err != nil {
				t.Fatal(err)
			}
			testnet.ExpectReset(t, s)
		})
	}
}

// Prove pairs a proof with the heads it is between, and checks it.
func TestProve(t *testing.T) {
	srv := startLogServer(t, testnet.Transports[0].Listen)
	c := NewClient(testnet.ClientOf(t, "1000", srv.host), testnet.Entry(t, "server"), testnet.Trust(t, srv.dir))
	first := srv.submit(t, 1).Head
	srv.submit(t, 2)
	third := srv.submit(t, 3).Head
	srv.submit(t, 4)
	nw, proof, err := c.Prove(testnet.Ctx(t), first, third)
	if err != nil || nw != third || len(proof) == 0 {
		t.Fatalf("Prove(1, 3) = size %v, %d hashes, %v", nw, len(proof), err)
	}
	latest, _, err := c.Prove(testnet.Ctx(t), first, nil)
	if err != nil || latest.Head.Size != 4 {
		t.Fatalf("Prove(1, latest): %v", err)
	}
	// A head the server never signed for that size: inconsistent.
	forged := *third.Head
	forged.Root[0] ^= 1
	enc := forged.Encode()
	sig, err := protocol.Sign(testkeys.Private(t, "server"), enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Prove(testnet.Ctx(t), first, &protocol.SignedTreeHead{Head: &forged, Encoded: enc, Signature: sig}); !errors.Is(err, protocol.ErrInconsistent) {
		t.Fatalf("forked head: %v, want ErrInconsistent", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
