package node

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// rotatedDir is a directory in which the key of "server" is the test key
// "outsider": the test key "server" was rotated away.
func rotatedDir(t *testing.T) *identity.Directory {
	t.Helper()
	dir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{
		"server": &testkeys.Private(t, "outsider").PublicKey,
		"1000":   &testkeys.Private(t, "1000").PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func testPeer(t *testing.T, id identity.ID) peer.ID {
	t.Helper()
	p, err := identity.PeerIDFromPublicKey(&testkeys.Private(t, id).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvePeerRetired(t *testing.T) {
	dir := rotatedDir(t)
	oldPeer, newPeer := testPeer(t, "server"), testPeer(t, "outsider")
	when := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	retired := []protocol.RetiredKey{{ID: "server", PeerID: oldPeer, RetiredAt: when, Successor: newPeer}}
	addr := "/ip4/127.0.0.1/tcp/1/p2p/" + oldPeer.String()
	_, _, err := ResolvePeer(dir, "server", addr, retired...)
	if !errors.Is(err, ErrRotatedKey) {
		t.Fatalf("retired /p2p/: %v", err)
	}
	for _, want := range []string{oldPeer.String(), newPeer.String(), protocol.FormatTime(when), "/p2p/" + newPeer.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %s: %v", want, err)
		}
	}
	// Without the retired keys, or with those of another id, it is just
	// another peer.
	if _, _, err := ResolvePeer(dir, "server", addr); errors.Is(err, ErrRotatedKey) || err == nil || !strings.Contains(err.Error(), "names peer") {
		t.Errorf("no retired keys: %v", err)
	}
	other := []protocol.RetiredKey{{ID: "1000", PeerID: oldPeer, RetiredAt: when, Successor: newPeer}}
	if _, _, err := ResolvePeer(dir, "server", addr, other...); errors.Is(err, ErrRotatedKey) || err == nil {
		t.Errorf("retired key of another id: %v", err)
	}
	// The current peer ID still resolves.
	if _, info, err := ResolvePeer(dir, "server", "/ip4/127.0.0.1/tcp/1/p2p/"+newPeer.String(), retired...); err != nil || info.ID != newPeer {
		t.Errorf("current /p2p/: %v", err)
	}
}

func TestExplainDialError(t *testing.T) {
	mismatch := fmt.Errorf("failed to dial: %w", sec.ErrPeerIDMismatch{Expected: testPeer(t, "server"), Actual: testPeer(t, "outsider")})
	for _, err := range []error{mismatch, errors.New("CRYPTO_ERROR 0x12a (remote): peer IDs don't match")} {
		got := ExplainDialError(err, "server")
		if !errors.Is(got, err) || !strings.Contains(got.Error(), "rotated") || !strings.Contains(got.Error(), "public/server.pem") {
			t.Errorf("%v: %v", err, got)
		}
	}
	plain := errors.New("connection refused")
	if got := ExplainDialError(plain, "server"); got != plain {
		t.Errorf("other errors change: %v", got)
	}
	if ExplainDialError(nil, "server") != nil {
		t.Error("nil is not nil")
	}
}

// TestDialRotatedServer dials a server whose key was rotated from a host
// that still has the old public key: the handshake fails, and the error
// says why.
func TestDialRotatedServer(t *testing.T) {
	newDir := rotatedDir(t)
	serverEntry, _ := newDir.Lookup("server")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			server, err := NewHost(&Identity{Self: serverEntry, Key: testkeys.Private(t, "outsider"), Dir: newDir}, []string{tr.listen})
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			staleDir := testkeys.Directory(t, "server", "1000")
			client, err := NewHost(testIdentity(t, "1000", staleDir), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			_, info, err := ResolvePeer(staleDir, "server", server.Addrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			err = client.Connect(ctxT(t), info)
			if err == nil {
				t.Fatal("connected to a server with another key")
			}
			if got := ExplainDialError(err, "server"); !strings.Contains(got.Error(), "may have been rotated") {
				t.Fatalf("no hint: %v", got)
			}
		})
	}
}
