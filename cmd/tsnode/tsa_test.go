package main

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// tsaURL is the HTTP address a server started with --http printed.
func tsaURL(t *testing.T, d *daemon) string {
	t.Helper()
	m := regexp.MustCompile(`server RFC 3161 on (http://[0-9.:]+/)`).FindStringSubmatch(d.output())
	if m == nil {
		t.Fatalf("the server did not print its RFC 3161 address\n%s", d.output())
	}
	return m[1]
}

// stamp --rfc3161 over libp2p and over --tsa-url writes .tsr files that
// openssl ts -verify and tsnode verify --rfc3161 accept; a changed
// document, a changed token, another trusted authority and a URL that is
// no TSA are refused.
func TestStampRFC3161(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000")
	data := t.TempDir()
	server := startDaemon(t, "server", keys, pass, "--data", data, "--http", "127.0.0.1:0")
	url := tsaURL(t, server)
	docs, out := t.TempDir(), t.TempDir()
	a := writeFile(t, filepath.Join(docs, "a.txt"), "document a\n")
	b := writeFile(t, filepath.Join(docs, "b.txt"), "document b\n")

	res := tsnode(t, nil, "stamp", "--keys", keys, "--passphrase-file", pass, "--server", server.addrs["tcp"], "--rfc3161", a)
	if res.code != 0 {
		t.Fatalf("stamp --rfc3161 over libp2p:\n%v", res)
	}
	mustContain(t, "stamp --rfc3161", res, a+".tsr", "1 of 1 documents stamped (RFC 3161)")
	res = tsnode(t, nil, "stamp", "--keys", keys, "--tsa-url", url, "--out", out, "--json", a, b)
	if res.code != 0 {
		t.Fatalf("stamp --tsa-url:\n%v", res)
	}
	for i, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var o documentJSON
		if err := json.Unmarshal([]byte(line), &o); err != nil || !o.OK || o.Serial == nil || o.ServerID != "server" {
			t.Fatalf("JSON line %d %q: %v", i, line, err)
		}
	}
	tokens := map[string]string{a + ".tsr": a, filepath.Join(out, "a.txt.tsr"): a, filepath.Join(out, "b.txt.tsr"): b}
	for tsr, doc := range tokens {
		res := tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", tsr, doc)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "VALID: "+doc) || !strings.Contains(res.stdout, "signed by server") {
			t.Fatalf("verify --rfc3161 %s:\n%v", tsr, res)
		}
		if _, err := exec.LookPath("openssl"); err == nil {
			cmd := exec.Command("openssl", "ts", "-verify", "-data", doc, "-in", tsr,
				"-CAfile", tsa.RootPath(keys, "server"), "-untrusted", tsa.ChainPath(keys, "server"))
			if o, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(o), "Verification: OK") {
				t.Fatalf("openssl ts -verify %s: %v\n%s", tsr, err, o)
			}
		}
	}
	res = tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", a+".tsr", "--json", a)
	var v verifyJSON
	if err := json.Unmarshal([]byte(res.stdout), &v); res.code != 0 || err != nil || !v.OK || v.HashAlg != "sha-256" || v.Serial == nil {
		t.Fatalf("verify --rfc3161 --json:\n%v", res)
	}

	refused := func(what string, want string, args ...string) {
		t.Helper()
		res := tsnode(t, nil, args...)
		if res.code != exitFailed || !strings.Contains(res.stdout+res.stderr, want) {
			t.Errorf("%s: want exit %d and %q\n%v", what, exitFailed, want, res)
		}
	}
	refused("another document", "document hash mismatch", "verify", "--keys", keys, "--rfc3161", a+".tsr", b)
	refused("another authority trusted", "untrusted signer", "verify", "--keys", keys, "--trust", "1000", "--rfc3161", a+".tsr", a)
	raw, err := os.ReadFile(a + ".tsr")
	if err != nil {
		t.Fatal(err)
	}
	// The imprint, in the signed TSTInfo (a byte of the certificates is
	// not signed: the published chain would stand in for them).
	sum := sha256.Sum256([]byte("document a\n"))
	i := bytes.Index(raw, sum[:])
	if i < 0 {
		t.Fatal("the token does not hold the imprint")
	}
	raw[i] ^= 0x10
	bad := filepath.Join(t.TempDir(), "bad.tsr")
	if err := os.WriteFile(bad, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	refused("a changed token", "INVALID", "verify", "--keys", keys, "--rfc3161", bad, a)
	refused("a URL that is no TSA", "HTTP 405", "stamp", "--keys", keys, "--tsa-url", url+"healthz", b)
	c := writeFile(t, filepath.Join(docs, "c.txt"), "document c\n")
	refused("a server not trusted", "untrusted signer", "stamp", "--keys", keys, "--trust", "1000", "--tsa-url", url, c)
	if _, err := os.Stat(c + ".tsr"); err == nil {
		t.Error("a refused token was written")
	}
	checkTokenInLog(t, keys, pass, data, server.addrs["tcp"], a)
}

// verify --rfc3161 --server proves a token in the log, --out writes the
// proof that --inclusion checks offline; tokens signed with the server's
// own key whose serial is beyond the log, or whose serial holds another
// token's leaf, are refused.
func checkTokenInLog(t *testing.T, keys, pass, data, server, a string) {
	t.Helper()
	proof := filepath.Join(t.TempDir(), "a.inclusion.json")
	args := []string{"verify", "--keys", keys, "--passphrase-file", pass, "--rfc3161", a + ".tsr", "--server", server, "--out", proof, a}
	var res result
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		// The token is durable before it is answered; the head covering
		// it may come a moment later.
		if res = tsnode(t, nil, args...); res.code == 0 || !strings.Contains(res.stdout+res.stderr, "not under the latest signed head") || time.Now().After(deadline) {
			break
		}
	}
	if res.code != 0 || !strings.Contains(res.stdout, "in the log: leaf 0 under the tree head of size") {
		t.Fatalf("verify --rfc3161 --server:\n%v", res)
	}
	res = tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", a+".tsr", "--inclusion", proof, a)
	if res.code != 0 || !strings.Contains(res.stdout, "in the log: leaf 0") {
		t.Fatalf("verify --rfc3161 --inclusion:\n%v", res)
	}
	res = tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", a+".tsr", "--inclusion", proof, writeFile(t, filepath.Join(t.TempDir(), "x"), "x"))
	if res.code != exitFailed {
		t.Fatalf("--inclusion with another document:\n%v", res)
	}

	k, err := tsa.EnsureKeys(keys, data, "server", testkeys.Private(t, "server"), tsa.KeyECDSA, time.Now())
	if err != nil || len(k.Made) != 0 {
		t.Fatalf("the server's TSA keys: made %v, %v", k.Made, err)
	}
	s := &protocol.TSASigner{Cert: k.Cert, Key: k.Signer, Chain: []*x509.Certificate{k.Root}, Policy: protocol.DefaultTSAPolicy}
	doc := writeFile(t, filepath.Join(t.TempDir(), "forged.txt"), "never stamped\n")
	sum := sha256.Sum256([]byte("never stamped\n"))
	for _, c := range []struct {
		serial uint64
		want   string
	}{{1 << 20, "not under the latest signed head"}, {0, "is another token's (its imprint differs)"}} {
		tok, err := s.Token(&protocol.TSALeaf{Hash: crypto.SHA256, Imprint: sum[:], Time: time.Now(), Serial: c.serial, Policy: protocol.DefaultTSAPolicy}, true)
		if err != nil {
			t.Fatal(err)
		}
		tsr := filepath.Join(t.TempDir(), "forged.tsr")
		if err := os.WriteFile(tsr, protocol.EncodeTSAGranted(tok), 0o644); err != nil {
			t.Fatal(err)
		}
		if res := tsnode(t, nil, "verify", "--keys", keys, "--rfc3161", tsr, doc); res.code != 0 {
			t.Fatalf("a token signed with the server's key fails even offline:\n%v", res)
		}
		res := tsnode(t, nil, "verify", "--keys", keys, "--passphrase-file", pass, "--rfc3161", tsr, "--server", server, doc)
		if res.code != exitFailed || !strings.Contains(res.stdout+res.stderr, c.want) {
			t.Errorf("a token of serial %d not in the log: want exit %d and %q\n%v", c.serial, exitFailed, c.want, res)
		}
	}
}
