package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// SIGTERM under load: the server finishes what it took, tells the
// requester it is shutting down, and exits 0. The requester asks again
// what the server did not read, silently (the notice says it was not
// read), and once the server is back on the same address and log, every
// document has a receipt that verifies; none failed, none carries the
// warning of a stamp that may have been read.
func TestServerDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "2000")
	data := filepath.Join(t.TempDir(), "data")
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
	server := startDaemon(t, "server", keys, pass, "--data", data, "--listen", listen)
	verifier := startDaemon(t, "verifier", keys, pass)
	docs := t.TempDir()
	const n = 600
	args := []string{"--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server", listen + "/p2p/" + peerOf(t, keys, "server"), "--verifier", verifier.addrs["tcp"], "--out", filepath.Join(docs, "receipts"), "--parallel", "32", "--timeout", "60s"}
	for i := range n {
		p := filepath.Join(docs, fmt.Sprintf("doc-%03d.txt", i))
		if err := os.WriteFile(p, []byte(fmt.Sprintf("document %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--file", p)
	}
	var out bytes.Buffer
	req := tsnodeCmd(t, context.Background(), nil, args...)
	req.Stdout, req.Stderr = &out, &out
	if err := req.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the first receipts, then stop the server under load.
	deadline := time.Now().Add(cmdTimeout)
	for {
		m, _ := filepath.Glob(filepath.Join(docs, "receipts", "*.receipt"))
		if len(m) >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no receipts within %v", cmdTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	if err := server.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-server.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("server still running 20 s after SIGTERM\n%s", server.output())
	}
	took := time.Since(t0)
	if server.err != nil || !strings.Contains(server.output(), "server stopped") {
		t.Fatalf("server after SIGTERM: %v\n%s", server.err, server.output())
	}
	startDaemon(t, "server", keys, pass, "--data", data, "--listen", listen)
	err := req.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	text := out.String()
	ok := strings.Count(text, "\n  OK\n")
	retried := strings.Count(text, "  tries      stamp ")
	t.Logf("server stopped %v after SIGTERM; %d documents OK, %d after more than one try", took.Round(time.Millisecond), ok, retried)
	if ok != n || err != nil {
		t.Fatalf("%d OK, want %d documents (%v)\n%s", ok, n, err, text)
	}
	if retried == 0 {
		t.Fatalf("no document was retried: the server stopped after the load\n%s", text)
	}
	if strings.Contains(text, "WARNING") {
		t.Errorf("a stamp refused by the shutdown notice was retried with a warning\n%s", text)
	}
	// Every receipt written verifies (in process: a tsnode verify per
	// receipt costs a process start each), and one through the CLI.
	receipts, _ := filepath.Glob(filepath.Join(docs, "receipts", "*.receipt"))
	if len(receipts) < ok {
		t.Fatalf("%d receipts for %d OK documents", len(receipts), ok)
	}
	trust := testnet.Trust(t, testkeys.Directory(t, "server"), "server")
	for _, rc := range receipts {
		doc := filepath.Join(docs, strings.TrimSuffix(filepath.Base(rc), ".receipt"))
		if err := verifyReceipt(trust, rc, doc); err != nil {
			t.Errorf("receipt %s: %v", rc, err)
		}
	}
	if o, err := tsnodeCmd(t, context.Background(), nil, "verify", "--keys", keys, "--receipt", receipts[0],
		filepath.Join(docs, strings.TrimSuffix(filepath.Base(receipts[0]), ".receipt"))).CombinedOutput(); err != nil {
		t.Errorf("tsnode verify %s: %v\n%s", receipts[0], err, o)
	}
}

func verifyReceipt(trust *protocol.Trust, receiptPath, docPath string) error {
	b, err := os.ReadFile(receiptPath)
	if err != nil {
		return err
	}
	rc, err := protocol.ParseReceipt(b)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	h := sha256.Sum256(doc)
	_, err = rc.Verify(trust, h[:])
	return err
}
