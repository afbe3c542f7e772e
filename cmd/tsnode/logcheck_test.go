package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/protocol"
)

// stampedDataDir makes a server data directory holding n stamps and the
// head that answered them, as a server leaves it.
func stampedDataDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	lg, save, err := logstore.Open(dir, "server", testnet.Trust(t, testkeys.Directory(t, "server")))
	if err != nil {
		t.Fatal(err)
	}
	a, err := authority.New(lg, authority.SignerFor(testkeys.Private(t, "server")), testnet.Entry(t, "server"), authority.WithHeadStore(save))
	if err != nil {
		t.Fatal(err)
	}
	var fs []authority.Future
	for i := range n {
		h := make([]byte, protocol.HashSize)
		h[0] = byte(i)
		fs = append(fs, a.Add(context.Background(), authority.Entry{Requester: testnet.Entry(t, "1000"), Hash: h, Nonce: make([]byte, protocol.NonceSize)}))
	}
	for _, f := range fs {
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	lg.Close()
	return dir
}

// oneLine checks that a refusal is exit 1 with one line on stderr that
// says each of want.
func oneLine(t *testing.T, what string, res result, want ...string) {
	t.Helper()
	t.Logf("%s: %s", what, res.stderr)
	lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
	if res.code != exitFailed || len(lines) != 1 || !strings.HasPrefix(lines[0], "tsnode: ") {
		t.Fatalf("%s: want exit %d and one line on stderr\n%v", what, exitFailed, res)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("%s: stderr does not say %q\n%v", what, w, res)
		}
	}
}

// The real binary refuses to serve a damaged or vanished log, in one
// line that names the file and says what to do; `tsnode log check`
// finds the same, refuses while a server runs, and passes a sound log.
func TestServerRefusesDamagedLog(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server")
	data := stampedDataDir(t, 30)
	logPath := filepath.Join(data, "log.db")
	server := func(dir string, extra ...string) result {
		return tsnode(t, nil, append([]string{"--role", "server", "--keys", keys, "--passphrase-file", pass,
			"--listen", "/ip4/127.0.0.1/tcp/0", "--data", dir}, extra...)...)
	}

	res := tsnode(t, nil, "log", "check", "--data", data, "--keys", keys)
	if res.code != 0 {
		t.Fatalf("log check of a sound log:\n%v", res)
	}
	mustContain(t, "log check", res, "size  30 stamps", "head.json: signed by server, size 30", "OK")

	d := startDaemon(t, "server", keys, pass, "--data", data)
	oneLine(t, "log check while the server runs", tsnode(t, nil, "log", "check", "--data", data, "--keys", keys), "in use")
	d.stop(t)

	good, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	oneLine(t, "server on a truncated log", server(data), logPath, "truncated", "restore log.db from a backup")
	oneLine(t, "log check of a truncated log", tsnode(t, nil, "log", "check", "--data", data, "--keys", keys), "truncated")

	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	oneLine(t, "server without log.db next to a head", server(data), logPath+" is missing", "size 30")
	oneLine(t, "--init next to a head", server(data, "--init"), "head.json exists")

	busy := t.TempDir()
	writeFile(t, filepath.Join(busy, "README"), "x")
	oneLine(t, "server in a non-empty dir without a log", server(busy), "is not empty", "--init")
	d = startDaemon(t, "server", keys, pass, "--data", busy, "--init")
	if !strings.Contains(d.output(), "holds 0 stamps") {
		t.Errorf("--init did not start a new log:\n%s", d.output())
	}
}
