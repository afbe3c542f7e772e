package protocol

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// retiredDir lays out a keys directory whose public/<id>.pem files are
// the test keys of current (id -> test key), and returns it with the
// loaded directory.
func retiredDir(t *testing.T, current map[identity.ID]identity.ID) (string, *identity.Directory) {
	t.Helper()
	keys := t.TempDir()
	pubs := map[identity.ID]*rsa.PublicKey{}
	for id, key := range current {
		pub := &testkeys.Private(t, key).PublicKey
		pubs[id] = pub
		writePEM(t, identity.PublicKeyPath(keys, id), pub)
	}
	dir, err := identity.NewDirectory(pubs)
	if err != nil {
		t.Fatal(err)
	}
	return keys, dir
}

func writePEM(t *testing.T, path string, pub *rsa.PublicKey) {
	t.Helper()
	b, err := identity.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, path, b)
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// retire writes the retired files of id's test key old, succeeded by the
// test key nw at when, and returns their paths.
func retire(t *testing.T, keys string, id, old, nw identity.ID, when time.Time) (pemPath, rotPath string) {
	t.Helper()
	p := entry(t, old).PeerID
	pemPath, rotPath = identity.RetiredPublicKeyPath(keys, id, p), identity.RetiredRotationPath(keys, id, p)
	writePEM(t, pemPath, &testkeys.Private(t, old).PublicKey)
	writeTestFile(t, rotPath, rotationOf(t, id, old, nw, when).Marshal())
	return pemPath, rotPath
}

var (
	t1 = sampleTime
	t2 = sampleTime.Add(24 * time.Hour)
)

func TestLoadRetiredKeysChain(t *testing.T) {
	// id "server" had the test key server, then outsider, now 1000's.
	keys, dir := retiredDir(t, map[identity.ID]identity.ID{"server": "1000", "2000": "2000"})
	if got, err := LoadRetiredKeys(keys, dir); err != nil || got != nil {
		t.Fatalf("no retired/ folder: %v %v", got, err)
	}
	retire(t, keys, "server", "outsider", "1000", t2)
	retire(t, keys, "server", "server", "outsider", t1)
	// Files other than .pem and .rotation, dot files and folders are not
	// keys.
	writeTestFile(t, filepath.Join(keys, "public", "retired", "README"), []byte("hi"))
	writeTestFile(t, filepath.Join(keys, "public", "retired", ".tmp-x.pem-1"), []byte("partial"))
	writeTestFile(t, filepath.Join(keys, "public", "retired", "old", "x.pem"), []byte("junk"))
	got, err := LoadRetiredKeys(keys, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []RetiredKey{
		{ID: "server", PeerID: entry(t, "server").PeerID, RetiredAt: t1, Successor: entry(t, "outsider").PeerID},
		{ID: "server", PeerID: entry(t, "outsider").PeerID, RetiredAt: t2, Successor: entry(t, "1000").PeerID},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d retired keys, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.ID || g.PeerID != w.PeerID || !g.RetiredAt.Equal(w.RetiredAt) || g.Successor != w.Successor {
			t.Errorf("key %d: got %+v, want %+v", i, g, w)
		}
		if pid, _ := identity.PeerIDFromPublicKey(g.PublicKey); pid != w.PeerID {
			t.Errorf("key %d: public key is peer %s", i, pid)
		}
	}
}

func TestLoadRetiredKeysRefuses(t *testing.T) {
	current := map[identity.ID]identity.ID{"server": "outsider", "2000": "2000"}
	for name, c := range map[string]struct {
		current map[identity.ID]identity.ID
		setup   func(keys string) (file string)
		want    string
	}{
		"pem without rotation": {current, func(keys string) string {
			pemPath, rotPath := retire(t, keys, "server", "server", "outsider", t1)
			os.Remove(rotPath)
			return pemPath
		}, "without its rotation statement"},
		"rotation without pem": {current, func(keys string) string {
			pemPath, rotPath := retire(t, keys, "server", "server", "outsider", t1)
			os.Remove(pemPath)
			return rotPath
		}, "without its retired key"},
		"bad file name": {current, func(keys string) string {
			p := filepath.Join(keys, "public", "retired", "server.pem")
			writePEM(t, p, &testkeys.Private(t, "server").PublicKey)
			writeTestFile(t, filepath.Join(keys, "public", "retired", "server.rotation"), rotationOf(t, "server", "server", "outsider", t1).Marshal())
			return p
		}, "<id>-<peer ID>"},
		"not a key": {current, func(keys string) string {
			pemPath, _ := retire(t, keys, "server", "server", "outsider", t1)
			writeTestFile(t, pemPath, []byte("not a key"))
			return pemPath
		}, "no PEM block"},
		"key of another peer than the file name": {current, func(keys string) string {
			pemPath, _ := retire(t, keys, "server", "server", "outsider", t1)
			writePEM(t, pemPath, &testkeys.Private(t, "2000").PublicKey)
			return pemPath
		}, "the file name says"},
		"statement of another id": {current, func(keys string) string {
			_, rotPath := retire(t, keys, "server", "server", "outsider", t1)
			writeTestFile(t, rotPath, rotationOf(t, "1000", "server", "outsider", t1).Marshal())
			return rotPath
		}, "of id 1000"},
		"statement of another old peer": {current, func(keys string) string {
			_, rotPath := retire(t, keys, "server", "server", "outsider", t1)
			writeTestFile(t, rotPath, rotationOf(t, "server", "2000", "outsider", t1).Marshal())
			return rotPath
		}, "old_peer_id is"},
		"bad signature": {current, func(keys string) string {
			_, rotPath := retire(t, keys, "server", "server", "outsider", t1)
			s := rotationOf(t, "server", "server", "outsider", t1)
			s.Signature = flip(s.Signature, 3)
			writeTestFile(t, rotPath, s.Marshal())
			return rotPath
		}, "does not verify"},
		"malformed statement": {current, func(keys string) string {
			_, rotPath := retire(t, keys, "server", "server", "outsider", t1)
			writeTestFile(t, rotPath, []byte(`{"format": "tsnode-key-rotation-v1"}`))
			return rotPath
		}, "missing"},
		"unknown successor": {current, func(keys string) string {
			_, rotPath := retire(t, keys, "server", "server", "2000", t1)
			return rotPath
		}, "successor"},
		"successor retired earlier": {map[identity.ID]identity.ID{"server": "1000"}, func(keys string) string {
			_, rotPath := retire(t, keys, "server", "server", "outsider", t2)
			retire(t, keys, "server", "outsider", "1000", t1)
			return rotPath
		}, "retired later"},
		"two keys with one successor": {map[identity.ID]identity.ID{"server": "1000"}, func(keys string) string {
			retire(t, keys, "server", "server", "1000", t1)
			_, rotPath := retire(t, keys, "server", "outsider", "1000", t2)
			return rotPath
		}, "also names"},
		"retired key is current": {map[identity.ID]identity.ID{"server": "server"}, func(keys string) string {
			pemPath, _ := retire(t, keys, "server", "server", "outsider", t1)
			return pemPath
		}, "also the current key"},
	} {
		t.Run(name, func(t *testing.T) {
			keys, dir := retiredDir(t, c.current)
			file := c.setup(keys)
			got, err := LoadRetiredKeys(keys, dir)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not name %s and say %q: %v", file, c.want, err)
			}
		})
	}
}
