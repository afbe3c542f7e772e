package identity_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

func TestRetiredPaths(t *testing.T) {
	p := peerOf(t, "server")
	if got, want := identity.RetiredPublicKeyPath("k", "server", p), filepath.Join("k", "public", "retired", "server-"+p.String()+".pem"); got != want {
		t.Errorf("public: %s, want %s", got, want)
	}
	if got, want := identity.RetiredRotationPath("k", "server", p), filepath.Join("k", "public", "retired", "server-"+p.String()+".rotation"); got != want {
		t.Errorf("rotation: %s, want %s", got, want)
	}
	if got, want := identity.RetiredPrivateKeyPath("k", "server", p), filepath.Join("k", "private", "retired", "server-"+p.String()+".pem"); got != want {
		t.Errorf("private: %s, want %s", got, want)
	}
	id, pid, err := identity.ParseRetiredName("my-server-" + p.String())
	if err != nil || id != "my-server" || pid != p {
		t.Errorf("ParseRetiredName: %q %s %v", id, pid, err)
	}
	for _, bad := range []string{"server", "server-", "-" + p.String(), "server-Qmnope", "../x-" + p.String()} {
		if _, _, err := identity.ParseRetiredName(bad); err == nil {
			t.Errorf("ParseRetiredName(%q) accepted", bad)
		}
	}
}

func peerOf(t *testing.T, id identity.ID) peer.ID {
	t.Helper()
	p, err := identity.PeerIDFromPublicKey(&testkeys.Private(t, id).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRotateKeyPair(t *testing.T) {
	dir := t.TempDir()
	if err := identity.CheckKeyPair(dir, "server"); err == nil || !strings.Contains(err.Error(), "no current key") {
		t.Errorf("CheckKeyPair without keys: %v", err)
	}
	testkeys.WriteKeysDir(t, dir, "server")
	if err := identity.CheckKeyPair(dir, "server"); err != nil {
		t.Fatal(err)
	}
	old, nw := testkeys.Private(t, "server"), testkeys.Private(t, "outsider")
	oldPriv := readFile(t, identity.PrivateKeyPath(dir, "server"))
	oldPub := readFile(t, identity.PublicKeyPath(dir, "server"))
	rotation := []byte("{\"the rotation statement\": 1}\n")
	pass := []byte(testkeys.Passphrase)
	if err := identity.RotateKeyPair(dir, "server", old, nw, pass, rotation); err != nil {
		t.Fatal(err)
	}
	p := peerOf(t, "server")
	if got := readFile(t, identity.RetiredPrivateKeyPath(dir, "server", p)); !bytes.Equal(got, oldPriv) {
		t.Error("the retired private key is not the old private key file")
	}
	if got := readFile(t, identity.RetiredPublicKeyPath(dir, "server", p)); !bytes.Equal(got, oldPub) {
		t.Error("the retired public key is not the old public key file")
	}
	if got := readFile(t, identity.RetiredRotationPath(dir, "server", p)); !bytes.Equal(got, rotation) {
		t.Error("the rotation file differs")
	}
	for path, want := range map[string]os.FileMode{
		identity.RetiredPrivateKeyPath(dir, "server", p): 0o600,
		filepath.Join(dir, "private", "retired"):         0o700 | os.ModeDir,
		identity.PrivateKeyPath(dir, "server"):           0o600,
	} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode(), want)
		}
	}
	key, err := identity.LoadPrivateKey(identity.PrivateKeyPath(dir, "server"), pass, nil)
	if err != nil || !key.PublicKey.Equal(&nw.PublicKey) {
		t.Fatalf("the new private key: %v", err)
	}
	pub, err := identity.LoadPublicKey(identity.PublicKeyPath(dir, "server"))
	if err != nil || !pub.Equal(&nw.PublicKey) {
		t.Fatalf("the new public key: %v", err)
	}
	// The directory lists the new key; public/retired/ is not read as ids.
	d, err := identity.LoadDirectory(dir)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := d.Lookup("server"); err != nil || !e.PublicKey.Equal(&nw.PublicKey) {
		t.Fatalf("directory after rotation: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "public", "retired"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}
