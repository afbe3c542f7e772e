package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/youmark/pkcs8"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

var testIDs = []identity.ID{"server", "1000", "2000"}

// publicKey parses testdata/public/<id>.pem without decrypting anything.
func publicKey(t *testing.T, id identity.ID) *rsa.PublicKey {
	t.Helper()
	name := "public/" + string(id) + ".pem"
	pub, err := identity.ParsePublicKey(name, testkeys.File(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// small2048 decrypts testdata/small-2048.pem around ParsePrivateKey,
// which refuses it.
func small2048(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(testkeys.File(t, "small-2048.pem"))
	k, _, err := pkcs8.ParsePrivateKey(block.Bytes, []byte(testkeys.Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok || key.N.BitLen() != 2048 {
		t.Fatalf("small-2048.pem holds %T", k)
	}
	return key
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	testkeys.WriteKeysDir(t, dir, testIDs...)
	d, err := identity.LoadDirectory(dir)
	if err != nil {
		t.Fatal(err)
	}

	peers := map[peer.ID]identity.ID{}
	for _, id := range testIDs {
		t.Run(string(id), func(t *testing.T) {
			key := testkeys.Private(t, id)
			e, err := d.Lookup(id)
			if err != nil {
				t.Fatal(err)
			}
			if e.ID != id {
				t.Errorf("Lookup(%s).ID = %s", id, e.ID)
			}
			if !e.PublicKey.Equal(&key.PublicKey) {
				t.Errorf("Lookup(%s) has another public key", id)
			}
			fromPub, err := identity.PeerIDFromPublicKey(&key.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			lpriv, err := identity.LibP2PPrivateKey(key)
			if err != nil {
				t.Fatal(err)
			}
			fromPriv, err := peer.IDFromPrivateKey(lpriv)
			if err != nil {
				t.Fatal(err)
			}
			if e.PeerID != fromPub || e.PeerID != fromPriv {
				t.Errorf("peer IDs disagree: directory %s, PeerIDFromPublicKey %s, libp2p private key %s", e.PeerID, fromPub, fromPriv)
			}
			if err := e.PeerID.Validate(); err != nil {
				t.Errorf("invalid peer ID: %v", err)
			}
			if !e.PeerID.MatchesPublicKey(lpriv.GetPublic()) {
				t.Error("peer ID does not match the libp2p public key")
			}
			byPeer, err := d.ByPeer(e.PeerID)
			if err != nil {
				t.Fatal(err)
			}
			if byPeer.ID != id || byPeer.PeerID != e.PeerID || !byPeer.PublicKey.Equal(e.PublicKey) {
				t.Errorf("ByPeer(%s) = %+v, want id %s", e.PeerID, byPeer, id)
			}
			if !d.Has(e.PeerID) {
				t.Errorf("Has(%s) = false", e.PeerID)
			}
			if other, dup := peers[e.PeerID]; dup {
				t.Errorf("ids %s and %s have one peer ID", other, id)
			}
			peers[e.PeerID] = id
		})
	}

	t.Run("unknown peer", func(t *testing.T) {
		outsider, err := identity.PeerIDFromPublicKey(publicKey(t, "outsider"))
		if err != nil {
			t.Fatal(err)
		}
		if d.Has(outsider) {
			t.Error("Has(outsider) = true")
		}
		e, err := d.ByPeer(outsider)
		checkErr(t, err, identity.ErrUnknownPeer, outsider.String())
		if e != (identity.Entry{}) {
			t.Errorf("ByPeer(outsider) = %+v with its error", e)
		}
		if d.Has("") {
			t.Error(`Has("") = true`)
		}
		_, err = d.ByPeer("")
		checkErr(t, err, identity.ErrUnknownPeer, "")
	})

	t.Run("unknown id", func(t *testing.T) {
		for _, id := range []identity.ID{"nope", "outsider", "Server", ""} {
			e, err := d.Lookup(id)
			checkErr(t, err, identity.ErrUnknownID, string(id))
			if e != (identity.Entry{}) {
				t.Errorf("Lookup(%q) = %+v with its error", id, e)
			}
		}
	})

	t.Run("entries", func(t *testing.T) {
		entries := d.Entries()
		var ids []identity.ID
		for _, e := range entries {
			ids = append(ids, e.ID)
			want, err := d.Lookup(e.ID)
			if err != nil || want != e {
				t.Errorf("entry %+v differs from Lookup: %+v, %v", e, want, err)
			}
		}
		if want := []identity.ID{"1000", "2000", "server"}; !slices.Equal(ids, want) {
			t.Errorf("Entries ids = %v, want %v", ids, want)
		}
		// Entries returns a copy: changing it leaves the directory alone.
		entries[0].ID = "changed"
		if d.Entries()[0].ID != "1000" {
			t.Error("Entries exposes the directory's storage")
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, e := range d.Entries() {
					if got, err := d.ByPeer(e.PeerID); err != nil || got.ID != e.ID {
						t.Errorf("ByPeer(%s): %v", e.PeerID, err)
					}
					if _, err := d.Lookup(e.ID); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	})
}

func TestLoadDirectoryIgnores(t *testing.T) {
	dir := t.TempDir()
	testkeys.WriteKeysDir(t, dir, "server", "1000")
	pub := filepath.Join(dir, "public")
	garbage := []byte("not a key")
	for _, name := range []string{".hidden.pem", "README", "server.pem.bak", ".tmp-1000.pem-123"} {
		if err := os.WriteFile(filepath.Join(pub, name), garbage, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(pub, "sub.pem"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := identity.LoadDirectory(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []identity.ID
	for _, e := range d.Entries() {
		ids = append(ids, e.ID)
	}
	if want := []identity.ID{"1000", "server"}; !slices.Equal(ids, want) {
		t.Errorf("ids = %v, want %v", ids, want)
	}
	// The private keys are never read: a directory with only public keys
	// loads as well.
	if err := os.RemoveAll(filepath.Join(dir, "private")); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.LoadDirectory(dir); err != nil {
		t.Errorf("directory without private/: %v", err)
	}
}

func TestLoadDirectoryBadFile(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file string
		data []byte
		want error
	}{
		{"bad.pem", testkeys.File(t, "small-2048.pub.pem"), identity.ErrKeySize},
		{"a b.pem", testkeys.File(t, "public/outsider.pem"), nil},
		{"-x.pem", testkeys.File(t, "public/outsider.pem"), nil},
		{"é.pem", testkeys.File(t, "public/outsider.pem"), nil},
		{"ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), identity.ErrNotRSA},
		{"garbage.pem", []byte("garbage"), identity.ErrMalformedKey},
		{"empty.pem", nil, identity.ErrMalformedKey},
		{"private.pem", testkeys.File(t, "private/outsider.pem"), identity.ErrMalformedKey},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			dir := t.TempDir()
			testkeys.WriteKeysDir(t, dir, "server", "1000")
			path := filepath.Join(dir, "public", tc.file)
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := identity.LoadDirectory(dir)
			if d != nil {
				t.Error("got a directory")
			}
			checkErr(t, err, tc.want, path)
		})
	}
}

func TestLoadDirectoryMissing(t *testing.T) {
	t.Run("no directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nokeys")
		_, err := identity.LoadDirectory(dir)
		checkErr(t, err, fs.ErrNotExist, dir)
		if !strings.Contains(err.Error(), "keygen") {
			t.Errorf("error %q does not mention keygen", err)
		}
	})
	t.Run("no public keys", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "public"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "public", "README"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := identity.LoadDirectory(dir)
		checkErr(t, err, nil, filepath.Join(dir, "public"))
		if !strings.Contains(err.Error(), "keygen") {
			t.Errorf("error %q does not mention keygen", err)
		}
	})
	t.Run("public is a file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "public"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := identity.LoadDirectory(dir)
		checkErr(t, err, nil, filepath.Join(dir, "public"))
	})
}

func TestDuplicateKey(t *testing.T) {
	t.Run("LoadDirectory", func(t *testing.T) {
		dir := t.TempDir()
		testkeys.WriteKeysDir(t, dir, "server", "1000")
		if err := os.WriteFile(filepath.Join(dir, "public", "copy.pem"), testkeys.File(t, "public/server.pem"), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := identity.LoadDirectory(dir)
		if d != nil {
			t.Error("got a directory")
		}
		checkErr(t, err, nil, "copy")
		if !strings.Contains(err.Error(), "server") {
			t.Errorf("error %q does not name both ids", err)
		}
	})
	t.Run("NewDirectory", func(t *testing.T) {
		// Equal keys in distinct values are still one key.
		a, b := publicKey(t, "1000"), publicKey(t, "1000")
		if a == b {
			t.Fatal("want two distinct values")
		}
		_, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"x": a, "y": b})
		checkErr(t, err, nil, "share")
		if !strings.Contains(err.Error(), "x") || !strings.Contains(err.Error(), "y") {
			t.Errorf("error %q does not name both ids", err)
		}
	})
}

func TestNewDirectory(t *testing.T) {
	keys := map[identity.ID]*rsa.PublicKey{}
	for _, id := range testIDs {
		keys[id] = publicKey(t, id)
	}
	d, err := identity.NewDirectory(keys)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Entries()); n != len(testIDs) {
		t.Errorf("%d entries, want %d", n, len(testIDs))
	}

	t.Run("empty", func(t *testing.T) {
		d, err := identity.NewDirectory(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Entries()) != 0 {
			t.Error("empty directory has entries")
		}
		_, err = d.Lookup("server")
		checkErr(t, err, identity.ErrUnknownID, "server")
	})
	t.Run("invalid id", func(t *testing.T) {
		_, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"../x": publicKey(t, "1000")})
		checkErr(t, err, nil, "../x")
	})
	t.Run("small key", func(t *testing.T) {
		block, _ := pem.Decode(testkeys.File(t, "small-2048.pub.pem"))
		small, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		_, err = identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"small": small.(*rsa.PublicKey)})
		checkErr(t, err, identity.ErrKeySize, "small")
	})
}

func TestLibP2PKeys(t *testing.T) {
	key := testkeys.Private(t, "server")
	lpriv, err := identity.LibP2PPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	lpub, err := identity.LibP2PPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !lpriv.GetPublic().Equals(lpub) {
		t.Error("libp2p private and public keys do not match")
	}
	other, err := identity.LibP2PPublicKey(publicKey(t, "1000"))
	if err != nil {
		t.Fatal(err)
	}
	if other.Equals(lpub) {
		t.Error("libp2p keys of different ids are equal")
	}
	msg := []byte("tsnode identity test")
	sig, err := lpriv.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := lpub.Verify(msg, sig); err != nil || !ok {
		t.Errorf("libp2p signature does not verify: %v %v", ok, err)
	}
	if ok, _ := other.Verify(msg, sig); ok {
		t.Error("signature verifies under another id's key")
	}
	// The libp2p key is the same RSA key: its raw form parses back to it.
	raw, err := lpub.Raw()
	if err != nil {
		t.Fatal(err)
	}
	back, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(back) {
		t.Error("libp2p public key holds another RSA key")
	}
}

func TestLibP2PKeySize(t *testing.T) {
	small := small2048(t)
	lpriv, err := identity.LibP2PPrivateKey(small)
	if lpriv != nil {
		t.Error("got a libp2p key")
	}
	checkErr(t, err, identity.ErrKeySize, "2048")
	lpub, err := identity.LibP2PPublicKey(&small.PublicKey)
	if lpub != nil {
		t.Error("got a libp2p public key")
	}
	checkErr(t, err, identity.ErrKeySize, "2048")
	pid, err := identity.PeerIDFromPublicKey(&small.PublicKey)
	if pid != "" {
		t.Errorf("got peer ID %s", pid)
	}
	checkErr(t, err, identity.ErrKeySize, "2048")
}
