package main

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// askBareToken asks the TSA at url for a token of doc without certReq
// (so that it carries no certificates) and writes the TimeStampResp to
// a new file, returned.
func askBareToken(t *testing.T, url, doc string) string {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	q, err := timestamp.CreateRequest(bytes.NewReader(b), &timestamp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, tsa.ContentTypeQuery, bytes.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	f, err := os.CreateTemp(t.TempDir(), "*.tsr")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(body.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// verifyTokenJSON runs tsnode verify --rfc3161 --json and returns its
// answer, failing the test unless it is VALID.
func verifyTokenJSON(t *testing.T, what, keys, tsr, doc string) verifyJSON {
	t.Helper()
	res := tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", tsr, "--json", doc)
	var v verifyJSON
	if err := json.Unmarshal([]byte(res.stdout), &v); res.code != 0 || err != nil || !v.OK {
		t.Fatalf("verify --rfc3161 %s: %v\n%v", what, err, res)
	}
	return v
}

// opensslVerifyAt runs openssl ts -verify at the token's genTime (its
// signing certificate may have ended since) and reports whether it says
// OK; it skips the test without openssl.
func opensslVerifyAt(t *testing.T, doc, tsr, caFile, untrusted string, genTime string) (bool, string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	at, err := protocol.ParseTime(genTime)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "ts", "-verify", "-data", doc, "-in", tsr, "-CAfile", caFile,
		"-untrusted", untrusted, "-attime", strconv.FormatInt(at.Unix(), 10)).CombinedOutput()
	return err == nil && strings.Contains(string(out), "Verification: OK"), string(out)
}

// readCertFile parses the certificates of a PEM file.
func readCertFile(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := protocol.ParseCertsPEM(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return certs
}

// A server whose signing certificates last 20 s renews its own while
// it runs (5 s before the end): the chain file, /certchain's source, and
// the NotAfter gauge move, and the renewals counter counts it. A token
// without certificates from before the renewal and one from after both
// verify, with tsnode verify --rfc3161 and with openssl ts -verify; the
// old one only with the past file.
func TestSigningCertRenewedWhileRunning(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--http", "127.0.0.1:0",
		"--metrics", "127.0.0.1:0", "--tsa-cert-lifetime", "20s")
	url, metrics := tsaURL(t, server), metricsBase(t, server)
	const gauge = "tsnode_rfc3161_signing_cert_not_after_timestamp_seconds"
	chainPath, pastPath := tsa.ChainPath(keys, "server"), tsa.PastPath(keys, "server")
	first := readCertFile(t, chainPath)[0]
	if got := metricValue(t, metrics, gauge); got != float64(first.NotAfter.Unix()) {
		t.Fatalf("%s = %v, want the signing certificate's end %d", gauge, got, first.NotAfter.Unix())
	}
	doc := writeFile(t, filepath.Join(t.TempDir(), "doc.txt"), "a document\n")
	before := askBareToken(t, url, doc)

	var renewed *x509.Certificate
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if c := readCertFile(t, chainPath)[0]; !c.Equal(first) {
			renewed = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no renewal within 60 s of a 20 s certificate\n%s", server.output())
		}
	}
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("renewed certificate ends %v, the first %v", renewed.NotAfter, first.NotAfter)
	}
	if n := metricValue(t, metrics, `tsnode_rfc3161_cert_renewals_total{result="renewed"}`); n < 1 {
		t.Fatalf("renewals counted: %v", n)
	}
	if got := metricValue(t, metrics, gauge); got <= float64(first.NotAfter.Unix()) {
		t.Fatalf("%s = %v after the renewal, the first certificate ended %d", gauge, got, first.NotAfter.Unix())
	}
	after := askBareToken(t, url, doc)
	if got := metricValue(t, metrics, `tsnode_rfc3161_requests_total{outcome="granted",via="http"}`); got != 2 {
		t.Fatalf("granted over http: %v, want 2", got)
	}
	server.stop(t) // the files stay as they are from here on
	if !strings.Contains(server.output(), "rfc3161 signing certificate renewed") {
		t.Errorf("the server did not log the renewal\n%s", server.output())
	}

	vBefore := verifyTokenJSON(t, "of the token from before the renewal", keys, before, doc)
	vAfter := verifyTokenJSON(t, "of the token from after the renewal", keys, after, doc)
	// The old token's certificate is in the past file only.
	hidden := pastPath + ".hidden"
	if err := os.Rename(pastPath, hidden); err != nil {
		t.Fatal(err)
	}
	res := tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", before, doc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "bad rfc3161 certificate chain") {
		t.Errorf("the old token without the past file: want it refused\n%v", res)
	}
	if err := os.Rename(hidden, pastPath); err != nil {
		t.Fatal(err)
	}

	root := tsa.RootPath(keys, "server")
	if ok, out := opensslVerifyAt(t, doc, before, root, pastPath, vBefore.Time); !ok {
		t.Errorf("openssl ts -verify of the old token with -untrusted %s:\n%s", pastPath, out)
	}
	if ok, out := opensslVerifyAt(t, doc, before, root, chainPath, vBefore.Time); ok {
		t.Errorf("openssl ts -verify of the old token with the current chain alone accepted it:\n%s", out)
	}
	all := filepath.Join(t.TempDir(), "all.pem")
	b := append(readFileBytes(t, chainPath), readFileBytes(t, pastPath)...)
	writeFile(t, all, string(b))
	if ok, out := opensslVerifyAt(t, doc, after, root, all, vAfter.Time); !ok {
		t.Errorf("openssl ts -verify of the new token:\n%s", out)
	}
}

func readFileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// After a rotation of the server's identity key (keygen --rotate's
// identity.RotateKeyPair, with a test key as the new key), the server
// makes a new root and moves the old root and chain to the past file:
// tokens of the old root, with and without certificates, still verify
// (the old key is a retired key of the id), the new root's too; a token
// of the old root dated after the rotation is refused.
func TestTSATokensSurviveKeyRotation(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server")
	data := t.TempDir()
	docs := t.TempDir()
	doc := writeFile(t, filepath.Join(docs, "doc.txt"), "before the rotation\n")
	server := startDaemon(t, "server", keys, pass, "--data", data, "--http", "127.0.0.1:0")
	bareOld := askBareToken(t, tsaURL(t, server), doc)
	if res := tsnode(t, nil, "stamp", "--keys", keys, "--tsa-url", tsaURL(t, server), doc); res.code != 0 {
		t.Fatalf("stamp --tsa-url:\n%v", res)
	}
	withCerts := doc + ".tsr"
	server.stop(t)
	oldChain := readCertFile(t, tsa.ChainPath(keys, "server"))

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

	server = startDaemon(t, "server", keys, pass, "--data", data, "--http", "127.0.0.1:0")
	docB := writeFile(t, filepath.Join(docs, "b.txt"), "after the rotation\n")
	bareNew := askBareToken(t, tsaURL(t, server), docB)
	server.stop(t)
	past := readCertFile(t, tsa.PastPath(keys, "server"))
	for i, c := range oldChain {
		found := false
		for _, p := range past {
			found = found || p.Equal(c)
		}
		if !found {
			t.Fatalf("certificate %d of the chain from before the rotation is not in the past file", i)
		}
	}
	if root := readCertFile(t, tsa.RootPath(keys, "server"))[0]; !testkeys.Public(t, "outsider").Equal(root.PublicKey) {
		t.Fatal("the root after the rotation is not for the new identity key")
	}

	for _, c := range []struct{ what, tsr, doc, peer string }{
		{"the bare token of the old root", bareOld, doc, old.PeerID.String()},
		{"the old root's token with its certificates", withCerts, doc, old.PeerID.String()},
		{"the token of the new root", bareNew, docB, cur.PeerID.String()},
	} {
		if v := verifyTokenJSON(t, c.what, keys, c.tsr, c.doc); v.ServerID != "server" || v.ServerPeer != c.peer {
			t.Errorf("%s: signed by %s (%s), want server (%s)", c.what, v.ServerID, v.ServerPeer, c.peer)
		}
	}
	v := verifyTokenJSON(t, "the bare token of the old root", keys, bareOld, doc)
	pastPath := tsa.PastPath(keys, "server")
	if ok, out := opensslVerifyAt(t, doc, bareOld, pastPath, pastPath, v.Time); !ok {
		t.Errorf("openssl ts -verify of the old root's token with -CAfile and -untrusted %s:\n%s", pastPath, out)
	}

	// The old root's signing key (the ECDSA key in --data, which the
	// rotation kept) signs a token dated after the rotation: refused.
	late := lateToken(t, data, oldChain, doc, rotatedAt.Add(time.Minute))
	res := tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", late, doc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "retired key") {
		t.Errorf("a token of the old root dated after the rotation: want it refused as of a retired key\n%v", res)
	}
}

// lateToken is a bare token of doc dated at, signed with the signing
// key in data under chain (its signing certificate, then its root).
func lateToken(t *testing.T, data string, chain []*x509.Certificate, doc string, at time.Time) string {
	t.Helper()
	blk, _ := pem.Decode(readFileBytes(t, tsa.KeyPath(data)))
	if blk == nil {
		t.Fatal("the signing key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(readFileBytes(t, doc))
	s := &protocol.TSASigner{Cert: chain[0], Key: key.(crypto.Signer), Chain: chain[1:], Policy: protocol.DefaultTSAPolicy}
	tok, err := s.Token(&protocol.TSALeaf{Hash: crypto.SHA256, Imprint: sum[:], Time: at, Serial: 1 << 20, Policy: protocol.DefaultTSAPolicy}, false)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "late.tsr")
	if err := os.WriteFile(path, protocol.EncodeTSAGranted(tok), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
