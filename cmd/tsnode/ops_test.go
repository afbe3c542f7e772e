package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/protocol"
)

// waitOutput waits until the daemon's output holds want n times.
func waitOutput(t *testing.T, d *daemon, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(cmdTimeout)
	for strings.Count(d.output(), want) < n {
		select {
		case <-d.exited:
			t.Fatalf("daemon exited (%v) before it said %q\n%s", d.err, want, d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not say %q within %v\n%s", want, cmdTimeout, d.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sendSignal(t *testing.T, d *daemon, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP reloads the server's keys: a peer added to public/ is admitted,
// a bad directory is refused (naming the file) and the old one kept, a
// removed peer is refused. The server lives through it all (SIGHUP used
// to end it, rc 129), and through a SIGUSR1 without --backup-dir.
func TestSIGHUPReloadsKeys(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000")
	peerKeys, peerPass := keysDir(t, "server", "2000")
	server := startDaemon(t, "server", keys, pass, "--data", filepath.Join(t.TempDir(), "data"))
	asPeer := func() result {
		return tsnode(t, nil, "log", "--keys", peerKeys, "--id", "2000", "--passphrase-file", peerPass, "--server", server.addrs["tcp"])
	}
	if res := asPeer(); res.code != exitFailed {
		t.Fatalf("2000, not in the server's directory, read the log:\n%v", res)
	}
	pem := filepath.Join(keys, "public", "2000.pem")
	b, err := os.ReadFile(filepath.Join(peerKeys, "public", "2000.pem"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, pem, string(b))
	sendSignal(t, server, syscall.SIGHUP)
	waitOutput(t, server, `"added": ["2000"]`, 1)
	if res := asPeer(); res.code != 0 || !strings.Contains(res.stdout, "size    0") {
		t.Fatalf("2000 after the reload that added it:\n%v", res)
	}

	bad := writeFile(t, filepath.Join(keys, "public", "3000.pem"), "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
	sendSignal(t, server, syscall.SIGHUP)
	waitOutput(t, server, "reload refused, keeping the old identity directory", 1)
	if !strings.Contains(server.output(), bad) {
		t.Fatalf("the refusal does not name %s\n%s", bad, server.output())
	}
	if res := asPeer(); res.code != 0 {
		t.Fatalf("2000 after a refused reload:\n%v", res)
	}

	for _, p := range []string{bad, pem} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	sendSignal(t, server, syscall.SIGHUP)
	waitOutput(t, server, `"removed": ["2000"]`, 1)
	if res := asPeer(); res.code != exitFailed {
		t.Fatalf("2000 after the reload that removed it:\n%v", res)
	}
	sendSignal(t, server, syscall.SIGUSR1)
	waitOutput(t, server, "backup signal ignored: the server runs without --backup-dir", 1)
	// The cleanup's SIGTERM checks that the server is alive and stops cleanly.
}

// publicKeysOnly is a keys directory of an auditor: public keys only.
func publicKeysOnly(t *testing.T) string {
	t.Helper()
	keys, _ := keysDir(t, "server", "1000")
	if err := os.RemoveAll(filepath.Join(keys, "private")); err != nil {
		t.Fatal(err)
	}
	return keys
}

// stampedWithReceipt is stampedDataDir that also writes the receipt of
// the last stamp.
func stampedWithReceipt(t *testing.T, n int) (dir, receipt string) {
	t.Helper()
	dir = t.TempDir()
	lg, save, err := logstore.Open(dir, "server", testnet.Trust(t, testkeys.Directory(t, "server")))
	if err != nil {
		t.Fatal(err)
	}
	a, err := authority.New(lg, authority.SignerFor(testkeys.Private(t, "server")), testnet.Entry(t, "server"), authority.WithHeadStore(save))
	if err != nil {
		t.Fatal(err)
	}
	var last *protocol.LogStamp
	for i := range n {
		h := make([]byte, protocol.HashSize)
		h[0] = byte(i)
		if last, err = a.Add(context.Background(), authority.Entry{Requester: testnet.Entry(t, "1000"), Hash: h, Nonce: make([]byte, protocol.NonceSize)})(); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	lg.Close()
	receipt = writeFile(t, filepath.Join(t.TempDir(), "last.receipt"), string(protocol.NewLogReceipt(last.Statement, last.Proof, last.Head).Marshal()))
	return dir, receipt
}

// logJSON runs tsnode log --json and parses its one line.
func tsnodeLogJSON(t *testing.T, wantCode int, args ...string) map[string]any {
	t.Helper()
	res := tsnode(t, nil, append([]string{"log", "--json"}, args...)...)
	var m map[string]any
	if res.code != wantCode || strings.Count(res.stdout, "\n") != 1 || json.Unmarshal([]byte(res.stdout), &m) != nil {
		t.Fatalf("tsnode log --json %v: want exit %d and one JSON line\n%v", args, wantCode, res)
	}
	return m
}

// An auditor with only public keys reads a --public-log server's log
// (an empty log as size 0), proves consistency with a receipt, and gets
// JSON on request; without --public-log it is refused with a clear
// error, and a log that says it is empty cannot extend a receipt.
func TestAuditorWithPublicKeysOnly(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000")
	auditor := publicKeysOnly(t)
	empty := startDaemon(t, "server", keys, pass, "--data", filepath.Join(t.TempDir(), "data"), "--public-log")
	res := tsnode(t, nil, "log", "--keys", auditor, "--server", empty.addrs["tcp"])
	if res.code != 0 || !strings.Contains(res.stdout, "the log is empty") || !strings.Contains(res.stdout, "size    0") {
		t.Fatalf("auditor on an empty log:\n%v", res)
	}
	m := tsnodeLogJSON(t, 0, "--keys", auditor, "--server", empty.addrs["quic-v1"])
	if m["size"] != 0.0 || m["empty"] != true || m["server_id"] != "server" || m["root"] != "" {
		t.Fatalf("--json on an empty log: %v", m)
	}

	data, receipt := stampedWithReceipt(t, 3)
	full := startDaemon(t, "server", keys, pass, "--data", data, "--public-log")
	m = tsnodeLogJSON(t, 0, "--keys", auditor, "--server", full.addrs["tcp"])
	if m["size"] != 3.0 || m["empty"] != false || len(m["root"].(string)) != 64 || m["time"] == "" || m["server_peer"] == "" {
		t.Fatalf("--json on a log of 3: %v", m)
	}
	m = tsnodeLogJSON(t, 0, "--keys", auditor, "--server", full.addrs["tcp"], "--from", receipt)
	if m["consistent"] != true || m["from_size"] != 3.0 || m["size"] != 3.0 {
		t.Fatalf("--json --from: %v", m)
	}
	m = tsnodeLogJSON(t, exitFailed, "--keys", auditor, "--server", empty.addrs["tcp"], "--from", receipt)
	if m["consistent"] != false || !strings.Contains(m["error"].(string), "the log was lost or replaced") {
		t.Fatalf("--json --from on a server that says its log is empty: %v", m)
	}

	closed := startDaemon(t, "server", keys, pass, "--data", filepath.Join(t.TempDir(), "data"))
	res = tsnode(t, nil, "log", "--keys", auditor, "--server", closed.addrs["tcp"], "--json")
	if res.code != exitFailed || res.stdout != "" || !strings.Contains(res.stderr, "admits it only if it runs with --public-log") {
		t.Fatalf("auditor on a server without --public-log:\n%v", res)
	}
}

// A running server writes a backup on SIGUSR1 into --backup-dir; the
// copy passes tsnode log check and a server starts on it. tsnode log
// backup refuses while the server runs and copies a stopped one.
func TestBackup(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000")
	data := stampedDataDir(t, 4)
	backups := filepath.Join(t.TempDir(), "backups")
	server := startDaemon(t, "server", keys, pass, "--data", data, "--backup-dir", backups)
	sendSignal(t, server, syscall.SIGUSR1)
	waitOutput(t, server, "backup written", 1)
	made, err := filepath.Glob(filepath.Join(backups, "tsnode-backup-*"))
	if err != nil || len(made) != 1 {
		t.Fatalf("backups: %v, %v\n%s", made, err, server.output())
	}
	res := tsnode(t, nil, "log", "check", "--data", made[0], "--keys", keys)
	if res.code != 0 || !strings.Contains(res.stdout, "size  4 stamps") || !strings.Contains(res.stdout, "the log holds it") {
		t.Fatalf("log check of the live backup:\n%v", res)
	}
	stopped := filepath.Join(t.TempDir(), "stopped")
	oneLine(t, "log backup while the server runs", tsnode(t, nil, "log", "backup", "--data", data, "--out", stopped), "in use", "SIGUSR1")
	server.stop(t)
	res = tsnode(t, nil, "log", "backup", "--data", data, "--out", stopped)
	if res.code != 0 || !strings.Contains(res.stdout, "4 stamps") {
		t.Fatalf("log backup of a stopped server:\n%v", res)
	}
	oneLine(t, "log backup into an existing folder", tsnode(t, nil, "log", "backup", "--data", data, "--out", stopped), "exists")
	if res := tsnode(t, nil, "log", "check", "--data", stopped, "--keys", keys); res.code != 0 {
		t.Fatalf("log check of the stopped backup:\n%v", res)
	}
	restored := startDaemon(t, "server", keys, pass, "--data", made[0])
	if !strings.Contains(restored.output(), "holds 4 stamps") {
		t.Fatalf("server on the restored backup:\n%s", restored.output())
	}
}
