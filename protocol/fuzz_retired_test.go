package protocol

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// FuzzLoadRetiredKeys lays out a keys directory in which id server's
// key was rotated twice (test keys server, then outsider, now 1000), and
// replaces one file of public/retired/ with fuzzed bytes, or adds one of
// a fuzzed name. What loads is a chain LoadRetiredKeys promises (each key
// has its file's peer ID, is not current, its statement verifies with it,
// its successor is current or retired later); every refusal names a file
// of the folder.
func FuzzLoadRetiredKeys(f *testing.F) {
	srv, out, cur := entry(f, "server"), entry(f, "outsider"), entry(f, "1000")
	pemOf := func(id identity.ID) []byte {
		b, err := identity.EncodePublicKey(testkeys.Public(f, id))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	rot1 := rotationOf(f, "server", "server", "outsider", t1).Marshal()
	rot2 := rotationOf(f, "server", "outsider", "1000", t2).Marshal()
	files := map[string][]byte{
		"server-" + srv.PeerID.String() + ".pem":      pemOf("server"),
		"server-" + srv.PeerID.String() + ".rotation": rot1,
		"server-" + out.PeerID.String() + ".pem":      pemOf("outsider"),
		"server-" + out.PeerID.String() + ".rotation": rot2,
	}
	f.Add("", []byte{})
	for name, b := range files {
		f.Add(name, b)
	}
	f.Add("server-"+srv.PeerID.String()+".rotation", rot2)
	f.Add("server-"+out.PeerID.String()+".pem", pemOf("server"))
	f.Add("server-"+cur.PeerID.String()+".pem", pemOf("1000"))
	f.Add("2000-"+srv.PeerID.String()+".rotation", rot1)
	f.Add("README", []byte("not a key"))
	f.Add(".tmp-x.pem-1", []byte("partial"))
	pub := testkeys.Public(f, "1000")
	dir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"server": pub})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if name == "." || name == ".." || len(name) > 200 || strings.ContainsAny(name, "/\x00") {
			return // not one file name
		}
		keys := t.TempDir()
		folder := filepath.Join(keys, "public", identity.RetiredDir)
		if err := os.MkdirAll(folder, 0o755); err != nil {
			t.Fatal(err)
		}
		for n, b := range files {
			writeTestFile(t, filepath.Join(folder, n), b)
		}
		if name != "" {
			if err := os.WriteFile(filepath.Join(folder, name), data, 0o644); err != nil {
				t.Skip(err) // a name this file system refuses
			}
		}
		got, err := LoadRetiredKeys(keys, dir)
		if name == "" && (err != nil || len(got) != 2) {
			t.Fatalf("the untouched folder: %d keys, %v", len(got), err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), folder+string(filepath.Separator)) {
				t.Fatalf("error %q names no file of %s", err, folder)
			}
			return
		}
		for i, k := range got {
			p, err := identity.PeerIDFromPublicKey(k.PublicKey)
			if err != nil || p != k.PeerID || dir.Has(p) {
				t.Fatalf("retired key %d: peer %s, key's peer %s (%v), current: %v", i, k.PeerID, p, err, dir.Has(p))
			}
			s, err := ReadRotationFile(identity.RetiredRotationPath(keys, k.ID, k.PeerID))
			if err != nil || s.Verify(k.PublicKey) != nil || s.Rotation.ID != k.ID || s.Rotation.NewPeer != k.Successor || !s.Rotation.Time.Equal(k.RetiredAt) {
				t.Fatalf("retired key %d does not match its rotation statement (%v)", i, err)
			}
			later := false
			for _, l := range got[i+1:] {
				later = later || (l.ID == k.ID && l.PeerID == k.Successor && l.RetiredAt.After(k.RetiredAt))
			}
			if c, err := dir.Lookup(k.ID); !later && (err != nil || c.PeerID != k.Successor) {
				t.Fatalf("retired key %d: successor %s is neither current nor retired later", i, k.Successor)
			}
		}
		if _, err := NewTrust(dir, got, "server"); err != nil {
			t.Fatalf("loaded retired keys that Trust refuses: %v", err)
		}
	})
}
