package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

// Reload tests: a server (or verifier) runs on the keys directory of a
// real folder, which the test changes before calling ReloadKeys, as
// SIGHUP does.

// keysOnDisk writes the public keys of ids (and the private key of the
// node) into a new keys directory.
func keysOnDisk(t *testing.T, ids ...identity.ID) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	testkeys.WriteKeysDir(t, dir, ids...)
	return dir
}

func loadDir(t *testing.T, keys string) *identity.Directory {
	t.Helper()
	d, err := identity.LoadDirectory(keys)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// everyone is the directory of the clients: they know every key.
func everyone(t *testing.T) *identity.Directory {
	return testkeys.Directory(t, "server", "1000", "2000", "outsider")
}

// clientHost is a dial-only tsnode host of id.
func clientHost(t *testing.T, id identity.ID) host.Host {
	t.Helper()
	h, err := NewHost(testIdentity(t, id, everyone(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// oneShot connects h (the host of id) to svc and asks for a one-shot
// stamp of a random hash.
func oneShot(t *testing.T, h host.Host, id identity.ID, svc *Service) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: svc.Host.ID(), Addrs: svc.Host.Addrs()}); err != nil {
		return err
	}
	all := everyone(t)
	c := &stamp.OneShotClient{Host: h, Key: testkeys.Private(t, id), Self: entryOf(t, all, id), Server: entryOf(t, all, "server"), Trust: serverTrust(t, all)}
	hash := make([]byte, 32)
	rand.Read(hash)
	_, err := c.Stamp(ctx, hash)
	return err
}

func entryOf(t *testing.T, d *identity.Directory, id identity.ID) identity.Entry {
	t.Helper()
	e, err := d.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitDisconnected waits until h has no connection to p.
func waitDisconnected(t *testing.T, h host.Host, p peer.ID) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.Network().Connectedness(p) == network.Connected {
		if time.Now().After(deadline) {
			t.Fatalf("still connected to %s 20 s after the reload", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A peer outside the directory is refused; added to public/ and
// reloaded, it is admitted. A peer removed is refused from then on, and
// its open connection (with a stamp session on it) is closed.
func TestReloadAdmitsAddedAndClosesRemoved(t *testing.T) {
	keys := keysOnDisk(t, "server", "1000")
	srv, err := StartServer(testIdentity(t, "server", loadDir(t, keys)), []string{LoopbackListen}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	h2000 := clientHost(t, "2000")
	if err := oneShot(t, h2000, "2000", srv); err == nil {
		t.Fatal("2000, not in the directory, got a stamp")
	}
	copyFile(t, filepath.Join(keysOnDisk(t, "2000"), "public", "2000.pem"), filepath.Join(keys, "public", "2000.pem"))
	r, err := srv.ReloadKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Added, []identity.ID{"2000"}) || len(r.Removed) != 0 || r.Peers != 3 {
		t.Fatalf("reload after adding 2000: %+v", r)
	}
	if err := oneShot(t, h2000, "2000", srv); err != nil {
		t.Fatalf("2000 after the reload that added it: %v", err)
	}

	// 1000 holds a session open; removing its key closes it.
	h1000 := clientHost(t, "1000")
	if err := oneShot(t, h1000, "1000", srv); err != nil {
		t.Fatal(err)
	}
	all := everyone(t)
	sess, err := stamp.OpenSession(ctxT(t), h1000, testkeys.Private(t, "1000"), entryOf(t, all, "1000"), entryOf(t, all, "server"), serverTrust(t, all), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Stamp(ctxT(t), bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(keys, "public", "1000.pem")); err != nil {
		t.Fatal(err)
	}
	r, err = srv.ReloadKeys(keys)
	if err != nil {
		t.Fatal(err)
	}
	p1000 := entryOf(t, all, "1000").PeerID
	if !slices.Equal(r.Removed, []identity.ID{"1000"}) || !slices.Contains(r.ClosedPeers, p1000) {
		t.Fatalf("reload after removing 1000: %+v", r)
	}
	waitDisconnected(t, h1000, srv.Host.ID())
	if _, err := sess.Stamp(ctxT(t), bytes.Repeat([]byte{2}, 32)); err == nil {
		t.Fatal("the removed peer's open session still stamps")
	}
	if err := oneShot(t, h1000, "1000", srv); err == nil {
		t.Fatal("the removed peer got a stamp on a new connection")
	}
	if err := oneShot(t, h2000, "2000", srv); err != nil {
		t.Fatalf("2000, still in the directory: %v", err)
	}
}

// A directory that does not load, or that would change what the node
// is, is refused with an error naming the cause, and the old one stays.
func TestReloadRefusesBadDirectory(t *testing.T) {
	keys := keysOnDisk(t, "server", "1000")
	srv, err := StartServer(testIdentity(t, "server", loadDir(t, keys)), []string{LoopbackListen}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pub := filepath.Join(keys, "public")
	other := filepath.Join(keysOnDisk(t, "outsider", "2000"), "public")
	h1000, h2000 := clientHost(t, "1000"), clientHost(t, "2000")
	cases := []struct {
		name        string
		spoil, mend func()
		want        string
	}{
		{"malformed key file",
			func() {
				os.WriteFile(filepath.Join(pub, "2000.pem"), []byte("-----BEGIN PUBLIC KEY-----\nnot a key\n"), 0o644)
			},
			func() { os.Remove(filepath.Join(pub, "2000.pem")) },
			filepath.Join(pub, "2000.pem")},
		{"two ids with one key",
			func() { copyFile(t, filepath.Join(pub, "1000.pem"), filepath.Join(pub, "2000.pem")) },
			func() { os.Remove(filepath.Join(pub, "2000.pem")) },
			"hold the same public key"},
		{"unreadable directory",
			func() { os.Rename(pub, pub+".away") },
			func() { os.Rename(pub+".away", pub) },
			"no identity directory at " + pub},
		{"own key removed",
			func() { os.Rename(filepath.Join(pub, "server.pem"), filepath.Join(pub, ".server.pem")) },
			func() { os.Rename(filepath.Join(pub, ".server.pem"), filepath.Join(pub, "server.pem")) },
			"no key for this node server"},
		{"own key replaced",
			func() {
				os.Rename(filepath.Join(pub, "server.pem"), filepath.Join(pub, ".server.pem"))
				copyFile(t, filepath.Join(other, "outsider.pem"), filepath.Join(pub, "server.pem"))
			},
			func() { os.Rename(filepath.Join(pub, ".server.pem"), filepath.Join(pub, "server.pem")) },
			"restart it to use a rotated key"},
		{"retired key without its rotation statement",
			func() {
				os.MkdirAll(filepath.Join(pub, identity.RetiredDir), 0o755)
				p := entryOf(t, everyone(t), "outsider").PeerID
				copyFile(t, filepath.Join(other, "outsider.pem"), filepath.Join(pub, identity.RetiredDir, "server-"+p.String()+identity.RetiredKeySuffix))
			},
			func() { os.RemoveAll(filepath.Join(pub, identity.RetiredDir)) },
			"without its rotation statement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spoil()
			defer c.mend()
			_, err := srv.ReloadKeys(keys)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "keeping the old identity directory") {
				t.Fatalf("reload: %v, want a refusal naming %q", err, c.want)
			}
			if err := oneShot(t, h1000, "1000", srv); err != nil {
				t.Fatalf("1000 after a refused reload: %v", err)
			}
			if err := oneShot(t, h2000, "2000", srv); err == nil {
				t.Fatal("2000 admitted after a refused reload")
			}
		})
	}
	// Mended, the folder reloads.
	if _, err := srv.ReloadKeys(keys); err != nil {
		t.Fatal(err)
	}
}

// A verifier's reload rebuilds its trust policy for the same
// authorities: an authority whose key is replaced without a rotation
// statement no longer vouches for what its old key signed; an authority
// removed from the directory makes the reload fail.
func TestVerifierReloadRebuildsTrust(t *testing.T) {
	all := everyone(t)
	keys := keysOnDisk(t, "server", "1000", "2000")
	srv, err := StartServer(testIdentity(t, "server", all), []string{LoopbackListen}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	vdir := loadDir(t, keys)
	ver, err := StartVerifier(testIdentity(t, "2000", vdir), []string{LoopbackListen}, VerifierOptions{Trust: serverTrust(t, vdir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ver.Close() })
	r, err := NewRequester(testIdentity(t, "1000", all), RequesterConfig{
		Trust: serverTrust(t, all), ServerID: "server", ServerAddr: addrOf(srv), VerifierID: "2000", VerifierAddr: addrOf(ver), OutDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	doc := writeDoc(t, t.TempDir(), "doc.txt", []byte("a document\n"))
	if res := r.Process(ctxT(t), doc); !res.OK() {
		t.Fatalf("before the reload: %+v", res)
	}
	pub := filepath.Join(keys, "public")
	if err := os.Rename(filepath.Join(pub, "server.pem"), filepath.Join(t.TempDir(), "server.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := ver.ReloadKeys(keys); err == nil || !strings.Contains(err.Error(), `trusted authority "server"`) {
		t.Fatalf("reload without the trusted authority's key: %v", err)
	}
	if res := r.Process(ctxT(t), doc); !res.OK() {
		t.Fatalf("after a refused reload: %+v", res)
	}
	copyFile(t, filepath.Join(keysOnDisk(t, "outsider"), "public", "outsider.pem"), filepath.Join(pub, "server.pem"))
	if _, err := ver.ReloadKeys(keys); err != nil {
		t.Fatal(err)
	}
	res := r.Process(ctxT(t), doc)
	if res.Verdict == nil || res.Verdict.Code != protocol.VerdictWrongServerKey {
		t.Fatalf("after the authority's key was replaced: %+v, want verdict %s", res, protocol.VerdictWrongServerKey)
	}
	if errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatal(res.Err)
	}
}
