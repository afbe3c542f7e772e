package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// A second server on a port the first holds fails at once, in one line
// naming the address, on TCP and on QUIC: two servers on one port would
// split the clients between two logs.
func TestSecondServerOnTakenPort(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "2000")
	first := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	for _, tr := range []string{"tcp", "quic-v1"} {
		taken, _, _ := strings.Cut(first.addrs[tr], "/p2p/")
		res := tsnode(t, nil, "--role", "server", "--keys", keys, "--passphrase-file", pass,
			"--data", t.TempDir(), "--listen", taken)
		if res.code != exitFailed {
			t.Fatalf("%s: second server on %s: want exit %d\n%v", tr, taken, exitFailed, res)
		}
		want := "tsnode: cannot listen on " + taken + ": the port is taken"
		if lines := strings.Split(strings.TrimSpace(res.stderr), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
			t.Errorf("%s: stderr should be one line starting %q\n%v", tr, want, res)
		}
	}
	// --security tls,noise starts; a bad value is a usage error.
	startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--security", "tls,noise")
	for _, args := range [][]string{
		{"--role", "server", "--security", "ssl"},
		{"--role", "verifier", "--security", "tls,tls"},
		{"--role", "requester", "--security", "noise", "--server", "/ip4/127.0.0.1/tcp/1", "--verifier", "/ip4/127.0.0.1/tcp/1", "--file", "f"},
	} {
		if res := tsnode(t, nil, args...); res.code != exitUsage || !strings.Contains(res.stderr, "--security") {
			t.Errorf("%q: want a usage error naming --security\n%v", args, res)
		}
	}
}

// A private key or passphrase file readable by others is refused, naming
// the file, its mode and the fix, never the passphrase; with
// --allow-insecure-key-mode the server starts, with a warning.
func TestInsecureKeyMode(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	priv := filepath.Join(keys, "private", "server.pem")
	secret := testkeys.Passphrase
	refused := func(name, file string) {
		t.Helper()
		res := tsnode(t, nil, "--role", "server", "--keys", keys, "--passphrase-file", pass, "--data", t.TempDir())
		if res.code != exitFailed {
			t.Fatalf("%s: want exit %d\n%v", name, exitFailed, res)
		}
		mustContain(t, name, res, file+" has mode 0644", "chmod 600 "+file, "--allow-insecure-key-mode")
		if strings.Contains(res.stdout+res.stderr, secret) {
			t.Fatalf("%s: the passphrase appears in the output", name)
		}
	}
	chmod := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	chmod(priv, 0o644)
	refused("private key 0644", priv)
	chmod(priv, 0o600)
	chmod(pass, 0o644)
	refused("passphrase file 0644", pass)
	chmod(priv, 0o644)

	d := startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--allow-insecure-key-mode")
	for _, file := range []string{priv, pass} {
		if !strings.Contains(d.output(), "WARNING: private key "+file) && !strings.Contains(d.output(), "WARNING: passphrase file "+file) {
			t.Errorf("no warning naming %s\n%s", file, d.output())
		}
	}
	if strings.Contains(d.output(), secret) {
		t.Fatal("the passphrase appears in the output")
	}
}
