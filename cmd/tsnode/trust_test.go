package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// writeSignedReceipt writes a v1 receipt for doc signed with the test key
// of signer, naming server (id and peer) as its server, dated at.
func writeSignedReceipt(t *testing.T, path, doc string, signer identity.ID, server identity.Entry, at time.Time) string {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := protocol.HashReader(strings.NewReader(string(data)))
	req := testkeys.Directory(t, "1000")
	self, _ := req.Lookup("1000")
	st := &protocol.Statement{
		HashAlgorithm: protocol.HashAlgorithm, DocumentHash: hash, Time: at, Serial: 1,
		RequesterID: self.ID, RequesterPeer: self.PeerID, ServerID: server.ID, ServerPeer: server.PeerID,
		Nonce: make([]byte, protocol.NonceSize),
	}
	sig, err := protocol.Sign(testkeys.Private(t, signer), st.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, path, string(protocol.NewReceipt(st, sig).Marshal()))
}

// The two attacks of issue 7 through the CLI, as a new user would try
// them with every public key on every host.
func TestUntrustedSignersRefused(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "2000", "outsider")
	dir := t.TempDir()
	doc := writeFile(t, filepath.Join(dir, "contract.txt"), "I owe you nothing.\n")

	// 1. Requester 1000 signs its own statement dated 2001.
	self, _ := testkeys.Directory(t, "1000").Lookup("1000")
	forged := writeSignedReceipt(t, filepath.Join(dir, "forged.receipt"), doc, "1000", self, time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", forged, doc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "INVALID") ||
		!strings.Contains(res.stdout, "untrusted signer: 1000 is not a trusted authority") {
		t.Fatalf("self-signed receipt:\n%v", res)
	}
	// Only whoever chooses to trust 1000 accepts it.
	if res := tsnode(t, nil, "verify", "--keys", keys, "--trust", "1000", "--receipt", forged, doc); res.code != 0 {
		t.Fatalf("self-signed receipt with --trust 1000:\n%v", res)
	}
	if res := tsnode(t, nil, "verify", "--keys", keys, "--trust", "../x", "--receipt", forged, doc); res.code != exitUsage {
		t.Fatalf("--trust with a bad id:\n%v", res)
	}

	// 2. A stock server under another enrolled id stamps; the requester
	// relays; the verifier (default trust) refuses.
	rogue := startDaemon(t, "server", keys, pass, "--id", "outsider", "--data", t.TempDir())
	verifier := startDaemon(t, "verifier", keys, pass)
	requester := []string{"--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server-id", "outsider", "--server", rogue.addrs["tcp"], "--verifier", verifier.addrs["tcp"], "--out", dir, "--file", doc}
	res = tsnode(t, nil, requester...)
	if res.code != exitFailed || !strings.Contains(res.stderr, "untrusted signer: outsider is not a trusted authority") {
		t.Fatalf("requester asking an untrusted server:\n%v", res)
	}
	if _, err := os.Stat(doc + ".receipt"); err == nil {
		t.Fatal("a receipt was written for an untrusted server")
	}
	res = tsnode(t, nil, append(requester, "--trust", "outsider")...)
	if res.code != exitFailed || !strings.Contains(res.stdout, "verifier   2000 says untrusted-signer") {
		t.Fatalf("requester trusting outsider, verifier not:\n%v", res)
	}
	receipt := filepath.Join(dir, "contract.txt.receipt")
	res = tsnode(t, nil, "verify", "--keys", keys, "--receipt", receipt, doc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "untrusted signer: outsider is not a trusted authority") {
		t.Fatalf("receipt of server outsider:\n%v", res)
	}
	res = tsnode(t, nil, "--role", "server", "--trust", "server", "--keys", keys)
	if res.code != exitUsage {
		t.Fatalf("--trust on a server:\n%v", res)
	}
}

// TestRotationKeepsHistory: receipts made before a rotation stay valid,
// the server signs with the new key afterwards, the log stays
// consistent across the rotation, and the retired key signing anything
// dated after its rotation is refused. The rotation is the one keygen
// --rotate performs (identity.RotateKeyPair), with a test key as the new
// key instead of a freshly generated one.
func TestRotationKeepsHistory(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "2000")
	data := t.TempDir()
	dir := t.TempDir()
	docA := writeFile(t, filepath.Join(dir, "a.txt"), "before the rotation\n")
	docB := writeFile(t, filepath.Join(dir, "b.txt"), "after the rotation\n")

	stamp := func(doc string, extra ...string) {
		t.Helper()
		server := startDaemon(t, "server", keys, pass, "--data", data)
		verifier := startDaemon(t, "verifier", keys, pass)
		res := tsnode(t, nil, append([]string{"--role", "requester", "--keys", keys, "--passphrase-file", pass,
			"--server", server.addrs["tcp"], "--verifier", verifier.addrs["tcp"], "--file", doc}, extra...)...)
		if res.code != 0 {
			t.Fatalf("requester:\n%v", res)
		}
		server.stop(t)
		verifier.stop(t)
	}
	stamp(docA)
	stamp(docA, "--oneshot")
	rA, rA1 := docA+".receipt", docA+".1.receipt"

	old, _ := testkeys.Directory(t, "server").Lookup("server")
	cur, _ := testkeys.Directory(t, "outsider").Lookup("outsider")
	rotatedAt := time.Now()
	s, err := protocol.SignRotation(testkeys.Private(t, "server"), &protocol.Rotation{ID: "server", OldPeer: old.PeerID, NewPeer: cur.PeerID, Time: rotatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if err := identity.RotateKeyPair(keys, "server", testkeys.Private(t, "server"), testkeys.Private(t, "outsider"), []byte(testkeys.Passphrase), s.Marshal()); err != nil {
		t.Fatal(err)
	}

	stamp(docB)
	rB := docB + ".receipt"
	for _, c := range []struct{ receipt, doc, signer string }{{rA, docA, old.PeerID.String()}, {rA1, docA, old.PeerID.String()}, {rB, docB, cur.PeerID.String()}} {
		res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", c.receipt, c.doc)
		if res.code != 0 || !strings.Contains(res.stdout, c.signer) {
			t.Errorf("%s after the rotation, want VALID signed by %s:\n%v", c.receipt, c.signer, res)
		}
	}
	// The log of the new key extends the log of the old one.
	server := startDaemon(t, "server", keys, pass, "--data", data)
	res := tsnode(t, nil, "log", "--keys", keys, "--passphrase-file", pass, "--server", server.addrs["tcp"], "--from", rA, "--to", rB)
	if res.code != 0 || !strings.Contains(res.stdout, "CONSISTENT") {
		t.Errorf("consistency across the rotation:\n%v", res)
	}
	// The retired key signs after its rotation: refused, naming why.
	late := writeSignedReceipt(t, filepath.Join(dir, "late.receipt"), docA, "server", old, rotatedAt.Add(time.Minute))
	res = tsnode(t, nil, "verify", "--keys", keys, "--receipt", late, docA)
	if res.code != exitFailed || !strings.Contains(res.stdout, "retired key") || !strings.Contains(res.stdout, "was retired at") {
		t.Errorf("retired key signing after its rotation:\n%v", res)
	}
	early := writeSignedReceipt(t, filepath.Join(dir, "early.receipt"), docA, "server", old, rotatedAt.Add(-time.Minute))
	if res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", early, docA); res.code != 0 {
		t.Errorf("retired key signing before its rotation:\n%v", res)
	}
}
