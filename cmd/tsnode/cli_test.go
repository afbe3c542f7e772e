package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

func TestUsageErrors(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "Usage"},
		{"no role", []string{"--keys", keys}, "--role"},
		{"unknown role", []string{"--role", "client"}, `--role "client"`},
		{"unknown flag", []string{"--role", "server", "--bogus"}, "bogus"},
		{"requester without file", []string{"--role", "requester", "--server", "/ip4/127.0.0.1/tcp/1", "--verifier", "/ip4/127.0.0.1/tcp/2"}, "--file"},
		{"stamp with verifier", []string{"stamp", "--server", "/ip4/127.0.0.1/tcp/1", "--verifier", "/ip4/127.0.0.1/tcp/2", "f"}, "--verifier is for --role requester, relay"},
		{"relay without receipt", []string{"relay", "--verifier", "/ip4/127.0.0.1/tcp/2", "f"}, "relay needs --verifier, --receipt R"},
		{"relay two documents", []string{"relay", "--verifier", "/ip4/127.0.0.1/tcp/2", "--receipt", "r", "a", "b"}, "exactly one document"},
		{"json on server", []string{"--role", "server", "--json"}, "--json is for --role requester"},
		{"store on server", []string{"--role", "server", "--store", "x"}, "--store is for --role verifier"},
		{"oneshot on verifier", []string{"--role", "verifier", "--oneshot"}, "--oneshot"},
		{"parallel zero", []string{"--role", "requester", "--parallel", "0", "--server", "/ip4/127.0.0.1/tcp/1", "--verifier", "/ip4/127.0.0.1/tcp/2", "--file", "f"}, "--parallel 0"},
		{"max-document not a size", []string{"--role", "verifier", "--max-document", "lots"}, "flag -max-document: want a positive size"},
		{"bad id", []string{"--role", "server", "--id", "../etc"}, "invalid id"},
		{"max-wait negative", []string{"--role", "server", "--max-wait", "-1ms"}, "--max-wait -1ms"},
		{"max-batch too large", []string{"--role", "server", "--max-batch", "5000"}, "--max-batch 5000: want 1 to 4096"},
		{"online-key-lifetime negative", []string{"--role", "server", "--online-key-lifetime", "-1h"}, "--online-key-lifetime -1h0m0s: want 0 (off) or 1m"},
		{"online-key-lifetime too short", []string{"--role", "server", "--online-key-lifetime", "10s"}, "--online-key-lifetime 10s: want 0 (off) or 1m"},
		{"online-key-lifetime too long", []string{"--role", "server", "--online-key-lifetime", "1000h"}, "--online-key-lifetime 1000h0m0s"},
		{"online-key-lifetime on verifier", []string{"--role", "verifier", "--online-key-lifetime", "1h"}, "--online-key-lifetime is for --role server"},
		{"stray argument", []string{"--role", "server", "extra"}, "unexpected arguments"},
		{"tsa-cert-lifetime too short", []string{"--role", "server", "--http", "127.0.0.1:0", "--tsa-cert-lifetime", "1s"}, "--tsa-cert-lifetime 1s: want 10s to"},
		{"tsa cert lifetime too long", []string{"tsa", "cert", "--keys", keys, "--tsa-cert-lifetime", "100000h"}, "--tsa-cert-lifetime 100000h0m0s: want 10s to"},
		{"keygen without id", []string{"keygen", "--keys", keys}, "--id"},
		{"keygen path id", []string{"keygen", "--id", "../../x", "--keys", keys, "--passphrase-file", pass}, "invalid id"},
		{"verify without receipt", []string{"verify", "doc"}, "--receipt"},
		{"verify two documents", []string{"verify", "--receipt", "r", "a", "b"}, "exactly one document"},
		{"consistency with receipt", []string{"verify", "--consistency", "p", "--receipt", "r"}, "--consistency"},
		{"log without server", []string{"log", "--keys", keys}, "--server"},
		{"log --to without --from", []string{"log", "--server", "/ip4/127.0.0.1/tcp/1", "--to", "r"}, "--to needs --from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tsnode(t, nil, tc.args...)
			if res.code != exitUsage {
				t.Fatalf("want exit %d\n%v", exitUsage, res)
			}
			mustContain(t, tc.name, res, tc.want)
		})
	}
	// Help is not an error.
	if res := tsnode(t, nil, "help"); res.code != 0 || !strings.Contains(res.stdout, "--role server") {
		t.Errorf("help:\n%v", res)
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	keys, pass := keysDir(t, "server")
	priv := filepath.Join(keys, "private", "server.pem")
	before, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	res := tsnode(t, nil, "keygen", "--id", "server", "--keys", keys, "--passphrase-file", pass)
	if res.code != exitFailed {
		t.Fatalf("want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "keygen over an existing key", res, priv, "--force")
	after, _ := os.ReadFile(priv)
	if string(after) != string(before) {
		t.Fatal("keygen changed an existing private key without --force")
	}
}

func TestKeygenAndID(t *testing.T) {
	t.Parallel()
	// The one RSA-4096 key this package generates: keygen is the
	// command's core, so it is tested as a user runs it.
	keys := filepath.Join(t.TempDir(), "keys")
	const secret = "correct horse battery staple"
	res := tsnode(t, []string{passphraseEnv + "=" + secret}, "keygen", "--id", "1000", "--keys", keys)
	if res.code != 0 {
		t.Fatalf("keygen:\n%v", res)
	}
	if strings.Contains(res.stdout+res.stderr, secret) {
		t.Fatal("keygen printed the passphrase")
	}
	info, err := os.Stat(filepath.Join(keys, "private", "1000.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, want 0600", info.Mode().Perm())
	}
	var peerID string
	for _, line := range strings.Split(res.stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "peer ID"); ok {
			peerID = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(peerID, "Qm") {
		t.Fatalf("keygen printed no peer ID\n%v", res)
	}
	ids := tsnode(t, nil, "id", "--keys", keys)
	if ids.code != 0 || !strings.Contains(ids.stdout, "1000") || !strings.Contains(ids.stdout, peerID) {
		t.Fatalf("tsnode id does not list 1000 as %s\n%v", peerID, ids)
	}
	// The new key opens with its passphrase, from the environment.
	dir := filepath.Dir(keys)
	wrong := writeFile(t, filepath.Join(dir, "wrong"), "not the passphrase\n")
	if err := os.Chmod(wrong, 0o600); err != nil {
		t.Fatal(err)
	}
	res = tsnode(t, nil, "log", "--keys", keys, "--id", "1000", "--passphrase-file", wrong, "--server-id", "1000", "--server", "/ip4/127.0.0.1/tcp/1")
	if res.code != exitFailed || !strings.Contains(res.stderr, "passphrase") {
		t.Errorf("wrong passphrase: want exit 1 naming the passphrase\n%v", res)
	}
}

func TestWrongPassphrase(t *testing.T) {
	keys, _ := keysDir(t, "server", "1000", "2000")
	const wrong = "hunter2-is-not-it"
	res := tsnode(t, []string{passphraseEnv + "=" + wrong}, "--role", "server", "--keys", keys, "--data", t.TempDir())
	if res.code != exitFailed {
		t.Fatalf("want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "wrong passphrase", res, "passphrase", "server.pem")
	if strings.Contains(res.stdout+res.stderr, wrong) {
		t.Fatal("the passphrase appears in the output")
	}
	// No passphrase at all, and no terminal: a clear error, no hang.
	res = tsnode(t, nil, "--role", "server", "--keys", keys, "--data", t.TempDir())
	if res.code != exitFailed {
		t.Fatalf("no passphrase: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "no passphrase", res, "--passphrase-file", passphraseEnv)
}

func TestRequesterPeersDown(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "2000")
	doc := writeFile(t, filepath.Join(t.TempDir(), "doc.txt"), "hello\n")
	// Nothing listens on port 1 of loopback.
	dead := "/ip4/127.0.0.1/tcp/1"
	// Tried again until --timeout, then an error that says so.
	res := tsnode(t, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server", dead, "--verifier", dead, "--file", doc, "--timeout", "2s")
	if res.code != exitFailed {
		t.Fatalf("server down: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "server down", res, "timed out after 2s connecting (", " tries); last failure: cannot reach server server")

	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	res = tsnode(t, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server", server.addrs["tcp"], "--verifier", dead, "--file", doc, "--timeout", "2s")
	if res.code != exitFailed {
		t.Fatalf("verifier down: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "verifier down", res, "cannot reach verifier 2000")

	// A /p2p/ part that is not the directory's peer for the id is refused
	// before anything is dialled.
	transport, _, _ := strings.Cut(server.addrs["tcp"], "/p2p/")
	wrongPeer := transport + "/p2p/" + peerOf(t, keys, "2000")
	res = tsnode(t, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server", wrongPeer, "--verifier", dead, "--file", doc)
	if res.code != exitFailed {
		t.Fatalf("wrong /p2p/: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "wrong /p2p/", res, "identity directory says server is")
}

// peerOf reads id's peer ID from tsnode id.
func peerOf(t *testing.T, keys, id string) string {
	t.Helper()
	res := tsnode(t, nil, "id", "--keys", keys)
	for _, line := range strings.Split(res.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == id {
			return f[1]
		}
	}
	t.Fatalf("tsnode id does not list %s\n%v", id, res)
	return ""
}

// TestEndToEnd runs the whole flow as a user would, over TCP and QUIC:
// server and verifier processes, a requester process stamping and
// relaying several documents over one connection, then offline checks.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "2000")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	store := t.TempDir()
	verifier := startDaemon(t, "verifier", keys, pass, "--store", store)

	for _, tr := range []string{"tcp", "quic-v1"} {
		t.Run(tr, func(t *testing.T) {
			docs := t.TempDir()
			out := t.TempDir()
			a := writeFile(t, filepath.Join(docs, "a.txt"), "line one\r\nline two\n")
			b := writeFile(t, filepath.Join(docs, "b.bin"), strings.Repeat("\x00<!>\xff", 300000)) // > one relay chunk
			requester := []string{"--role", "requester", "--keys", keys, "--passphrase-file", pass,
				"--server", server.addrs[tr], "--verifier", verifier.addrs[tr], "--out", out}
			// One at a time, so that b's tree head is larger than a's and
			// the consistency proof between them is not empty.
			res := tsnode(t, nil, append(requester, "--parallel", "1", "--file", a, "--file", b)...)
			if res.code != 0 {
				t.Fatalf("requester:\n%v", res)
			}
			mustContain(t, "requester", res, "2 of 2 documents stamped and verified", "verifier   2000 says valid")
			ra, rb := filepath.Join(out, "a.txt.receipt"), filepath.Join(out, "b.bin.receipt")
			for doc, rc := range map[string]string{a: ra, b: rb} {
				if res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", rc, doc); res.code != 0 || !strings.HasPrefix(res.stdout, "VALID") {
					t.Fatalf("verify %s:\n%v", rc, res)
				}
			}
			// A second run never overwrites a receipt.
			res = tsnode(t, nil, append(requester, "--file", a, "--oneshot")...)
			if res.code != 0 {
				t.Fatalf("one-shot requester:\n%v", res)
			}
			v1 := filepath.Join(out, "a.txt.1.receipt")
			if res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", v1, a); res.code != 0 {
				t.Fatalf("verify v1 receipt %s:\n%v", v1, res)
			}
			if got := readJSONField(t, v1, "format"); got != "tsnode-receipt-v1" {
				t.Errorf("--oneshot wrote a %q receipt", got)
			}
			if got := readJSONField(t, ra, "format"); got != "tsnode-receipt-v2" {
				t.Errorf("a session wrote a %q receipt", got)
			}
			checkTampering(t, keys, a, ra)
			checkTampering(t, keys, a, v1)
			checkConsistency(t, keys, pass, server.addrs[tr], ra, rb)
		})
	}
	entries, err := os.ReadDir(store)
	if err != nil || len(entries) != 6 {
		t.Errorf("verifier --store holds %d entries (%v), want 6", len(entries), err)
	}
	// One requester file missing: the others still go through, exit 1.
	doc := writeFile(t, filepath.Join(t.TempDir(), "ok.txt"), "ok\n")
	res := tsnode(t, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server", server.addrs["tcp"], "--verifier", verifier.addrs["tcp"],
		"--file", filepath.Join(t.TempDir(), "missing.txt"), "--file", doc)
	if res.code != exitFailed {
		t.Fatalf("missing file: want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "missing file", res, "missing.txt", "cannot read document", "1 of 2 documents stamped and verified")
}

func readJSONField(t *testing.T, path, field string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s, _ := m[field].(string)
	return s
}

// checkTampering changes the document, and each field of the receipt, and
// wants tsnode verify to fail naming the failure.
func checkTampering(t *testing.T, keys, doc, receipt string) {
	t.Helper()
	dir := t.TempDir()
	orig, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	changed := append([]byte{}, orig...)
	changed[0] ^= 1
	otherDoc := writeFile(t, filepath.Join(dir, "doc"), string(changed))
	res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", receipt, otherDoc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "INVALID") || !strings.Contains(res.stdout, "document hash mismatch") {
		t.Errorf("changed document:\n%v", res)
	}

	raw, err := os.ReadFile(receipt)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string { // change one character, keep the alphabet (hex or base64)
		b := []byte(s)
		i := len(b) / 2
		switch {
		case b[i] == '0':
			b[i] = '1'
		case strings.IndexByte("0123456789abcdef", b[i]) >= 0:
			b[i] = '0'
		case b[i] == 'A':
			b[i] = 'B'
		default:
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		field string
		edit  func(map[string]any)
		want  string
	}{
		{"document_hash", func(m map[string]any) { m["document_hash"] = flip(m["document_hash"].(string)) }, "malformed receipt"},
		{"time", func(m map[string]any) { m["time"] = "2020-01-01T00:00:00Z" }, "malformed receipt"},
		{"serial", func(m map[string]any) { m["serial"] = m["serial"].(float64) + 1 }, "malformed receipt"},
		{"format", func(m map[string]any) { m["format"] = "tsnode-receipt-v9" }, "malformed receipt"},
	}
	if m["format"] == "tsnode-receipt-v1" {
		cases = append(cases,
			struct {
				field string
				edit  func(map[string]any)
				want  string
			}{"signature", func(m map[string]any) { m["signature"] = flip(m["signature"].(string)) }, "bad server signature"})
	} else {
		cases = append(cases,
			struct {
				field string
				edit  func(map[string]any)
				want  string
			}{"tree_head.signature", func(m map[string]any) {
				th := m["tree_head"].(map[string]any)
				th["signature"] = flip(th["signature"].(string))
			}, "bad server signature"},
			struct {
				field string
				edit  func(map[string]any)
				want  string
			}{"tree_head.root_hash", func(m map[string]any) {
				th := m["tree_head"].(map[string]any)
				th["root_hash"] = flip(th["root_hash"].(string))
			}, "malformed receipt"},
		)
	}
	for _, c := range cases {
		var mm map[string]any
		_ = json.Unmarshal(raw, &mm)
		c.edit(mm)
		b, _ := json.MarshalIndent(mm, "", "  ")
		path := writeFile(t, filepath.Join(dir, strings.ReplaceAll(c.field, ".", "_")+".receipt"), string(b))
		res := tsnode(t, nil, "verify", "--keys", keys, "--receipt", path, doc)
		if res.code != exitFailed || !strings.Contains(res.stdout, "INVALID") || !strings.Contains(res.stdout, c.want) {
			t.Errorf("receipt with %s changed: want exit 1 and %q\n%v", c.field, c.want, res)
		}
	}

	// The directory's key for "server" is another key: wrong server key.
	wrongKeys := filepath.Join(dir, "wrong-keys")
	testkeys.WriteKeysDir(t, wrongKeys, "outsider")
	if err := os.Rename(filepath.Join(wrongKeys, "public", "outsider.pem"), filepath.Join(wrongKeys, "public", "server.pem")); err != nil {
		t.Fatal(err)
	}
	res = tsnode(t, nil, "verify", "--keys", wrongKeys, "--receipt", receipt, doc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "wrong server key") {
		t.Errorf("receipt checked against another key for server:\n%v", res)
	}
	// No key for the trusted authority at all: nothing could verify.
	otherKeys := filepath.Join(dir, "other-keys")
	testkeys.WriteKeysDir(t, otherKeys, "1000")
	res = tsnode(t, nil, "verify", "--keys", otherKeys, "--receipt", receipt, doc)
	if res.code != exitFailed || !strings.Contains(res.stderr, `--trust: trusted authority "server" has no public key`) {
		t.Errorf("receipt checked without the authority's key:\n%v", res)
	}
	// The server's key is there, but only another id is trusted.
	res = tsnode(t, nil, "verify", "--keys", keys, "--trust", "1000", "--receipt", receipt, doc)
	if res.code != exitFailed || !strings.Contains(res.stdout, "untrusted signer: server is not a trusted authority") {
		t.Errorf("receipt of an untrusted server:\n%v", res)
	}
}

// checkConsistency proves, through the running server, that the log grew
// from receipt a's tree head to receipt b's, writes the proof, and checks
// it offline; a tampered proof fails.
func checkConsistency(t *testing.T, keys, pass, server, a, b string) {
	t.Helper()
	proof := filepath.Join(t.TempDir(), "proof.json")
	res := tsnode(t, nil, "log", "--keys", keys, "--passphrase-file", pass, "--server", server,
		"--from", a, "--to", b, "--out", proof)
	if res.code != 0 || !strings.Contains(res.stdout, "CONSISTENT") {
		t.Fatalf("tsnode log --from --to:\n%v", res)
	}
	res = tsnode(t, nil, "verify", "--keys", keys, "--consistency", proof)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "VALID") {
		t.Fatalf("verify --consistency:\n%v", res)
	}
	raw, err := os.ReadFile(proof)
	if err != nil {
		t.Fatal(err)
	}
	// Any change to a hex digit of the proof must be caught.
	s := string(raw)
	i := strings.Index(s, `"proof": [`)
	if i < 0 {
		t.Fatalf("no proof array in %s:\n%s", proof, s)
	}
	i += len(`"proof": [`)
	j := strings.IndexAny(s[i:], "0123456789abcdef]")
	if j < 0 || s[i+j] == ']' {
		t.Fatalf("empty consistency proof between %s and %s:\n%s", a, b, s)
	}
	j += i
	c := byte('0')
	if s[j] == '0' {
		c = '1'
	}
	bad := writeFile(t, filepath.Join(t.TempDir(), "bad.json"), s[:j]+string(c)+s[j+1:])
	res = tsnode(t, nil, "verify", "--keys", keys, "--consistency", bad)
	if res.code != exitFailed || !strings.Contains(res.stdout, "INVALID") {
		t.Errorf("tampered consistency proof:\n%v", res)
	}
	// A proof under a name tsnode does not know is not a missing proof.
	renamed := writeFile(t, filepath.Join(t.TempDir(), "renamed.json"), strings.Replace(s, `"proof"`, `"Proof"`, 1))
	res = tsnode(t, nil, "verify", "--keys", keys, "--consistency", renamed)
	if res.code != exitFailed || !strings.Contains(res.stdout, `INVALID: `+renamed) || !strings.Contains(res.stdout, `unknown member "Proof"`) {
		t.Errorf("consistency proof with a miscased member:\n%v", res)
	}
}

func TestByteSizeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"64KiB", 64 << 10, true},
		{"512MiB", 512 << 20, true},
		{"4GiB", 4 << 30, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"1.5GiB", 0, false},
		{"GiB", 0, false},
		{"4GB", 0, false},
		{"17179869184GiB", 0, false}, // overflows uint64
	} {
		var b byteSize
		err := b.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && uint64(b) != tc.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, ok=%v", tc.in, b, err, tc.want, tc.ok)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for in, want := range map[uint64]string{4 << 30: "4GiB", 512 << 20: "512MiB", 64 << 10: "64KiB", 1536: "1536", 1: "1", 0: "0"} {
		b := byteSize(in)
		if got := b.String(); got != want {
			t.Errorf("%d prints as %q, want %q", in, got, want)
		}
	}
	res := tsnode(t, nil, "--role", "verifier", "-h")
	mustContain(t, "verifier help", res, "(default 4GiB)")
	res = tsnode(t, nil, "--role", "requester", "-h")
	mustContain(t, "requester help", res, "default: 2m plus 1s per MiB")
}
