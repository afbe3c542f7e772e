package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// outputField returns the value after label on a line of out.
func outputField(t *testing.T, res result, label string) string {
	t.Helper()
	for _, line := range strings.Split(res.stdout, "\n") {
		if v, ok := strings.CutPrefix(line, label); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	t.Fatalf("no %q in the output\n%v", label, res)
	return ""
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// TestKeygenRotate rotates the server's key twice, as a user would: each
// rotation generates one real RSA-4096 key.
func TestKeygenRotate(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000")
	p0 := peerOf(t, keys, "server")
	oldPriv, err := os.ReadFile(filepath.Join(keys, "private", "server.pem"))
	if err != nil {
		t.Fatal(err)
	}

	res := tsnode(t, nil, "keygen", "--id", "server", "--rotate", "--force", "--keys", keys, "--passphrase-file", pass)
	if res.code != exitUsage {
		t.Fatalf("--rotate --force: want exit %d\n%v", exitUsage, res)
	}
	res = tsnode(t, nil, "keygen", "--id", "2000", "--rotate", "--keys", keys, "--passphrase-file", pass)
	if res.code != exitFailed {
		t.Fatalf("--rotate without a key: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "--rotate without a key", res, "no current key")

	res = tsnode(t, nil, "keygen", "--id", "server", "--rotate", "--keys", keys, "--passphrase-file", pass)
	if res.code != 0 {
		t.Fatalf("keygen --rotate:\n%v", res)
	}
	if got := outputField(t, res, "old peer ID"); got != p0 {
		t.Fatalf("old peer ID %s, want %s", got, p0)
	}
	p1 := outputField(t, res, "new peer ID")
	at1 := outputField(t, res, "rotated at")
	retiredPub := filepath.Join(keys, "public", "retired", "server-"+p0+".pem")
	retiredRot := filepath.Join(keys, "public", "retired", "server-"+p0+".rotation")
	retiredPriv := filepath.Join(keys, "private", "retired", "server-"+p0+".pem")
	mustContain(t, "keygen --rotate", res, filepath.Join(keys, "public", "server.pem"), retiredPub, retiredRot, retiredPriv, "destroy", "same passphrase")
	if p1 == p0 || !strings.HasPrefix(p1, "Qm") {
		t.Fatalf("new peer ID %q", p1)
	}
	// The old private key moved, byte for byte, 0600 in a 0700 folder.
	if b, err := os.ReadFile(retiredPriv); err != nil || string(b) != string(oldPriv) {
		t.Fatalf("old private key not kept in private/retired/: %v", err)
	}
	if m := mode(t, retiredPriv); m != 0o600 {
		t.Errorf("retired private key mode %v, want 0600", m)
	}
	if m := mode(t, filepath.Dir(retiredPriv)); m != 0o700 {
		t.Errorf("private/retired mode %v, want 0700", m)
	}
	if m := mode(t, filepath.Join(keys, "private", "server.pem")); m != 0o600 {
		t.Errorf("new private key mode %v, want 0600", m)
	}
	for _, p := range []string{retiredPub, retiredRot} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if got := peerOf(t, keys, "server"); got != p1 {
		t.Fatalf("tsnode id: server is %s, want %s", got, p1)
	}
	ids := tsnode(t, nil, "id", "--keys", keys)
	mustContain(t, "tsnode id after one rotation", ids, p0+"  retired "+at1+", succeeded by "+p1)

	// The new key opens with the old passphrase; a retired /p2p/ is
	// explained before anything is dialled.
	res = tsnode(t, nil, "log", "--keys", keys, "--id", "server", "--passphrase-file", pass, "--server", "/ip4/127.0.0.1/tcp/1/p2p/"+p0)
	if res.code != exitFailed {
		t.Fatalf("log to a retired peer: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "log to a retired peer", res, "key was rotated", at1, p1)

	// A rotation interrupted after the new private key and before the new
	// public key: tsnode id fails, and --rotate finishes it without
	// making another key.
	oldPub, err := os.ReadFile(retiredPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "public", "server.pem"), oldPub, 0o644); err != nil {
		t.Fatal(err)
	}
	ids = tsnode(t, nil, "id", "--keys", keys)
	if ids.code != exitFailed {
		t.Fatalf("interrupted rotation: tsnode id: want exit %d\n%v", exitFailed, ids)
	}
	mustContain(t, "interrupted rotation", ids, retiredPub, "run it again")
	res = tsnode(t, nil, "keygen", "--id", "server", "--rotate", "--keys", keys, "--passphrase-file", pass)
	if res.code != 0 {
		t.Fatalf("finishing an interrupted rotation:\n%v", res)
	}
	mustContain(t, "finishing an interrupted rotation", res, "finished an interrupted rotation", p1)
	if got := peerOf(t, keys, "server"); got != p1 {
		t.Fatalf("after finishing: server is %s, want %s", got, p1)
	}

	// A second rotation makes a chain.
	res = tsnode(t, nil, "keygen", "--id", "server", "--rotate", "--keys", keys, "--passphrase-file", pass)
	if res.code != 0 {
		t.Fatalf("second keygen --rotate:\n%v", res)
	}
	p2, at2 := outputField(t, res, "new peer ID"), outputField(t, res, "rotated at")
	ids = tsnode(t, nil, "id", "--keys", keys)
	if ids.code != 0 {
		t.Fatalf("tsnode id:\n%v", ids)
	}
	cur := strings.Index(ids.stdout, "server  "+p2)
	r1 := strings.Index(ids.stdout, p1+"  retired "+at2+", succeeded by "+p2)
	r0 := strings.Index(ids.stdout, p0+"  retired "+at1+", succeeded by "+p1)
	if cur < 0 || r1 < cur || r0 < r1 {
		t.Fatalf("tsnode id does not list the current key, then the retired keys newest first\n%v", ids)
	}

	// A bad retired file: tsnode id fails naming it.
	if err := os.WriteFile(retiredRot, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids = tsnode(t, nil, "id", "--keys", keys)
	if ids.code != exitFailed {
		t.Fatalf("bad rotation file: want exit %d\n%v", exitFailed, ids)
	}
	mustContain(t, "bad rotation file", ids, retiredRot)
}
