package identity_test

import (
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// Fuzz targets of the names read from outside (ids, peer IDs, retired
// key file names) and of the identity directory, a folder of key files.

// peerSeeds are the peer IDs of the test keys, in their one spelling and
// in others peer.Decode takes.
func peerSeeds(f *testing.F) []string {
	var out []string
	for _, id := range []identity.ID{"server", "1000"} {
		name := "public/" + string(id) + ".pem"
		pub, err := identity.ParsePublicKey(name, testkeys.File(f, name))
		if err != nil {
			f.Fatal(err)
		}
		p, err := identity.PeerIDFromPublicKey(pub)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, p.String(), peer.ToCid(p).String(), "z"+p.String())
	}
	return append(out, "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "")
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"server", "1000", "a.b-c_d", "..", ".", "-x", "a/b", "é", strings.Repeat("a", 65), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := identity.ParseID(s)
		if err != nil {
			if id != "" {
				t.Fatalf("refused %q but returned %q", s, id)
			}
			return
		}
		if string(id) != s || len(s) == 0 || len(s) > 64 {
			t.Fatalf("ParseID(%q) = %q", s, id)
		}
		// An id names exactly one file in the folder it is joined to.
		dir := filepath.Join("keys", "public")
		p := identity.PublicKeyPath("keys", id)
		if filepath.Dir(p) != dir || filepath.Base(p) != s+".pem" || strings.HasPrefix(s, ".") {
			t.Fatalf("id %q names the path %s", s, p)
		}
	})
}

func FuzzParsePeerID(f *testing.F) {
	for _, s := range peerSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := identity.ParsePeerID(s)
		if err != nil {
			if p != "" || !strings.Contains(err.Error(), "invalid peer ID") {
				t.Fatalf("ParsePeerID(%q) = %q, %v", s, p, err)
			}
			return
		}
		// One spelling per peer ID: what parses is what String writes.
		if p.String() != s || p.Validate() != nil {
			t.Fatalf("ParsePeerID(%q) = %s (Validate: %v)", s, p, p.Validate())
		}
		if q, err := peer.Decode(s); err != nil || q != p {
			t.Fatalf("peer.Decode(%q) = %s, %v", s, q, err)
		}
	})
}

func FuzzParseRetiredName(f *testing.F) {
	for _, p := range peerSeeds(f) {
		f.Add("server-" + p)
		f.Add("a-b-" + p)
		f.Add(p)
	}
	f.Add("server-")
	f.Add("-")
	f.Fuzz(func(t *testing.T, stem string) {
		id, p, err := identity.ParseRetiredName(stem)
		if err != nil {
			if id != "" || p != "" {
				t.Fatalf("refused %q but returned %q, %q", stem, id, p)
			}
			return
		}
		if _, err := identity.ParseID(string(id)); err != nil {
			t.Fatalf("%q: id %q does not parse: %v", stem, id, err)
		}
		if q, err := identity.ParsePeerID(p.String()); err != nil || q != p {
			t.Fatalf("%q: peer %s does not parse: %v", stem, p, err)
		}
		// The file name is canonical: the parts name the same file.
		path := identity.RetiredPublicKeyPath("keys", id, p)
		if filepath.Base(path) != stem+identity.RetiredKeySuffix || filepath.Dir(path) != filepath.Join("keys", "public", identity.RetiredDir) {
			t.Fatalf("%q parses to %q and %s, which name %s", stem, id, p, path)
		}
	})
}

// FuzzLoadDirectory writes one fuzzed file, of a fuzzed name, into
// public/ next to the keys of server and 1000: the directory loads with
// exactly the keys ParsePublicKey reads from its <id>.pem files, or the
// error names the file (or the two ids that share a key).
func FuzzLoadDirectory(f *testing.F) {
	for _, c := range []struct{ name, file string }{
		{"2000.pem", "public/2000.pem"},
		{"server.pem", "public/1000.pem"},
		{"2000.pem", "public/1000.pem"},
		{"x.pem", "small-2048.pub.pem"},
		{".hidden.pem", "small-2048.pub.pem"},
		{"README", "small-2048.pub.pem"},
		{"bad id!.pem", "public/outsider.pem"},
		{"-x.pem", "public/outsider.pem"},
		{"outsider.pem", "private/outsider.pem"},
	} {
		f.Add(c.name, testkeys.File(f, c.file))
	}
	f.Add("garbage.pem", []byte("garbage"))
	f.Add("empty.pem", []byte{})
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if name == "" || name == "." || name == ".." || len(name) > 200 || strings.ContainsAny(name, "/\x00") {
			return // not one file name
		}
		dir := t.TempDir()
		testkeys.WriteKeysDir(t, dir, "server", "1000")
		path := filepath.Join(dir, "public", name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Skip(err) // a name this file system refuses
		}
		d, err := identity.LoadDirectory(dir)
		if err != nil {
			if d != nil {
				t.Fatal("an error and a directory")
			}
			if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), "share one public key") {
				t.Fatalf("error %q names neither %s nor the ids sharing a key", err, path)
			}
			return
		}
		want := map[identity.ID]*rsa.PublicKey{}
		files, _ := os.ReadDir(filepath.Join(dir, "public"))
		for _, e := range files {
			stem, ok := strings.CutSuffix(e.Name(), ".pem")
			if e.IsDir() || !ok || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			file := filepath.Join(dir, "public", e.Name())
			raw, _ := os.ReadFile(file)
			pub, err := identity.ParsePublicKey(file, raw)
			if err != nil {
				t.Fatalf("loaded a directory holding %s, which ParsePublicKey refuses: %v", file, err)
			}
			want[identity.ID(stem)] = pub
		}
		entries := d.Entries()
		if len(entries) != len(want) {
			t.Fatalf("%d entries, want %d", len(entries), len(want))
		}
		for _, e := range entries {
			if pub := want[e.ID]; pub == nil || !pub.Equal(e.PublicKey) {
				t.Fatalf("entry %s is not the key of %s.pem", e.ID, e.ID)
			}
			if back, err := d.ByPeer(e.PeerID); err != nil || back.ID != e.ID {
				t.Fatalf("peer %s of %s leads to %v, %v", e.PeerID, e.ID, back.ID, err)
			}
		}
	})
}
