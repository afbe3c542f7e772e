package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// onlineScripts are the §11 scripts that involve §11.6: for the online
// receipt of docs/example/, and the v2 one with §11.6 in.
type onlineScripts struct {
	online, v2, withoutOnline string
	shown                     string // the output §11.6 shows
}

func readOnlineScripts(t *testing.T) onlineScripts {
	t.Helper()
	doc := readSpec(t)
	setup, block := shellBlocks(t, doc, "### 11.1"), shellBlocks(t, doc, "### 11.6")
	v2, result := shellBlocks(t, doc, "### 11.3"), shellBlocks(t, doc, "### 11.4")
	const v2name = "receipt=hello.txt.v2.receipt\n"
	if strings.Count(v2, v2name) != 1 {
		t.Fatalf("PROTOCOL.md §11.3 no longer sets %q once", v2name)
	}
	online := strings.Replace(v2, v2name, "receipt=hello.txt.online.receipt\n", 1)
	shown := section(t, doc, "### 11.6")
	const intro = "and §11.4 print\n\n```\n"
	i := strings.Index(shown, intro)
	if i < 0 {
		t.Fatal("PROTOCOL.md §11.6 does not show the output of its commands")
	}
	shown = shown[i+len(intro):]
	shown = shown[:strings.Index(shown, "```")]
	return onlineScripts{
		online:        setup + block + online + result,
		v2:            setup + block + v2 + result,
		withoutOnline: setup + online + result,
		shown:         shown,
	}
}

// runInCopy runs script with bash in a copy of docs/example/ to which
// edit (may be nil) is applied.
func runInCopy(t *testing.T, script string, edit func(dir string)) (stdout, stderr string, err error) {
	t.Helper()
	example := filepath.Join(testRoot(t), "docs", "example")
	dir := t.TempDir()
	for _, name := range []string{"hello.txt", "hello.txt.v2.receipt", "hello.txt.online.receipt", "server.pem"} {
		b, err := os.ReadFile(filepath.Join(example, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(dir)
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// onlineEdits makes tampered copies of the online receipt.
type onlineEdits struct {
	t         *testing.T
	testdata  string
	receipt   *protocol.Receipt
	head      *protocol.SignedTreeHead
	fields    [][]byte // the example delegation's fields, the tag first
	headTime  time.Time
	signature []byte // the online key's signature of the head
}

func newOnlineEdits(t *testing.T) *onlineEdits {
	root := testRoot(t)
	r, err := protocol.ReadReceiptFile(filepath.Join(root, "docs", "example", "hello.txt.online.receipt"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := r.TreeHeadOf()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := protocol.ParseHeadSignature(head.Signature)
	if err != nil || hs.Delegation == nil {
		t.Fatalf("the online receipt's head signature: %+v, %v", hs, err)
	}
	return &onlineEdits{t: t, testdata: filepath.Join(root, "internal", "testkeys", "testdata"), receipt: r, head: head,
		fields: parseFields(t, hs.Delegation), headTime: head.Head.Time, signature: hs.Signature}
}

// write returns an edit that writes the online receipt as f leaves it.
func (e *onlineEdits) write(f func(th *protocol.ReceiptTreeHead)) func(dir string) {
	return func(dir string) {
		r := *e.receipt
		th := *r.TreeHead
		f(&th)
		r.TreeHead = &th
		if err := os.WriteFile(filepath.Join(dir, "hello.txt.online.receipt"), r.Marshal(), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// delegation returns an edit that gives the head the delegation of the
// example's fields as change leaves them, signed by the test key signer,
// and the signature of the head by online.
func (e *onlineEdits) delegation(signer identity.ID, online *ecdsa.PrivateKey, change func(f [][]byte) [][]byte) func(dir string) {
	f := make([][]byte, len(e.fields))
	copy(f, e.fields)
	f = change(f)
	d := protocol.EncodeRecord(string(f[0]), f[1:]...)
	key, err := loadKey(e.testdata, signer)
	if err != nil {
		e.t.Fatal(err)
	}
	dsig, err := protocol.Sign(key, d)
	if err != nil {
		e.t.Fatal(err)
	}
	digest := sha256.Sum256(e.head.Encoded)
	sig, err := online.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.write(func(th *protocol.ReceiptTreeHead) {
		th.Delegation, th.DelegationSignature, th.Signature = b64(d), b64(dsig), b64(sig)
	})
}

// window returns an edit whose delegation is for [nb, na].
func (e *onlineEdits) window(nb, na time.Time) func(dir string) {
	return e.delegation(serverID, testkeys.OnlineKey(serverID), func(f [][]byte) [][]byte {
		f[5], f[6] = []byte(protocol.FormatTime(nb)), []byte(protocol.FormatTime(na))
		return f
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestOpensslOnlineKey runs §11.6, exactly as written, with §11.1, §11.3
// and §11.4, on docs/example/hello.txt.online.receipt: it must print what
// §11.6 shows, and refuse every tampered copy with the expected reason.
func TestOpensslOnlineKey(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "xxd", "sha256sum", "base64", "sed", "sort", "cut", "tr", "wc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH; the commands of PROTOCOL.md §11 need it", tool)
		}
	}
	s := readOnlineScripts(t)
	e := newOnlineEdits(t)
	t.Run("valid", func(t *testing.T) {
		out, errOut, err := runInCopy(t, s.online, nil)
		if err != nil {
			t.Fatalf("the §11.6 commands reject docs/example: %v\n%s%s", err, out, errOut)
		}
		if out != s.shown {
			t.Errorf("the §11.6 commands print\n%s\nPROTOCOL.md shows\n%s", out, s.shown)
		}
	})
	t.Run("v2 receipt with §11.6", func(t *testing.T) {
		out, errOut, err := runInCopy(t, s.v2, nil)
		if err != nil || !strings.HasPrefix(out, "Verified OK\nVALID: hello.txt ") || strings.Contains(out, "online key") {
			t.Fatalf("§11.1, §11.6, §11.3 and §11.4 on the v2 receipt: %v\n%s%s", err, out, errOut)
		}
	})
	t.Run("without §11.6", func(t *testing.T) {
		out, errOut, err := runInCopy(t, s.withoutOnline, nil)
		if err == nil || strings.Contains(out, "VALID") || !strings.Contains(errOut, "INVALID: an online key signed the tree head: run §11.6 first") {
			t.Fatalf("§11.3 without §11.6 on a head an online key signed: %v\n%s%s", err, out, errOut)
		}
	})

	head := e.headTime
	p384, err := ecdsa.GenerateKey(elliptic.P384(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p384SPKI, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	online := testkeys.OnlineKey(serverID)
	set := func(i int, v []byte) func(f [][]byte) [][]byte {
		return func(f [][]byte) [][]byte { f[i] = v; return f }
	}
	flip := func(s string, at int) string {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x01
		return b64(b)
	}
	const month = protocol.MaxDelegationWindow
	for _, c := range []struct {
		name, want string // want "": accepted
		edit       func(dir string)
	}{
		{"head at not_before", "", e.window(head, head.Add(time.Hour))},
		{"head at not_after", "", e.window(head.Add(-time.Hour), head)},
		{"window of 31 days", "", e.window(head.Add(-time.Hour), head.Add(-time.Hour).Add(month))},
		{"window of 31 days to the day", "", e.window(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC))},
		{"head 1 ns before not_before", "INVALID: the tree head is dated outside the online key's window", e.window(head.Add(1), head.Add(time.Hour))},
		{"head 1 ns after not_after", "INVALID: the tree head is dated outside the online key's window", e.window(head.Add(-time.Hour), head.Add(-1))},
		{"window of 31 days and 1 ns", "INVALID: the online key's window is longer than 31 days", e.window(head.Add(-time.Hour), head.Add(-time.Hour).Add(month+1))},
		{"window of 31 days and 1 s, to the day", "INVALID: the online key's window is longer than 31 days",
			e.window(time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 21, 0, 0, 1, 0, time.UTC))},
		{"window of 32 days", "INVALID: the online key's window is longer than 31 days", e.window(head.Add(-time.Hour), head.Add(32*24*time.Hour))},
		{"delegation changed", "INVALID: bad server signature (delegation)",
			e.write(func(th *protocol.ReceiptTreeHead) { th.Delegation = flip(th.Delegation, 30) })},
		{"delegation_signature changed", "INVALID: bad server signature (delegation)",
			e.write(func(th *protocol.ReceiptTreeHead) { th.DelegationSignature = flip(th.DelegationSignature, 200) })},
		{"online signature changed", "INVALID: bad server signature (online key)",
			e.write(func(th *protocol.ReceiptTreeHead) { th.Signature = flip(th.Signature, 10) })},
		{"tree head changed", "INVALID: bad server signature (online key)",
			e.write(func(th *protocol.ReceiptTreeHead) { th.SignedData = flip(th.SignedData, 90) })},
		{"another server key", "INVALID: bad server signature (delegation)", otherKeyIf(t, testRoot(t), "1000")},
		{"delegation signed by another key", "INVALID: bad server signature (delegation)",
			e.delegation("outsider", online, func(f [][]byte) [][]byte { return f })},
		{"head signed by another online key", "INVALID: bad server signature (online key)",
			e.delegation(serverID, testkeys.OnlineKey("outsider"), func(f [][]byte) [][]byte { return f })},
		{"delegation of another server", "INVALID: the delegation is of another server", e.delegation(serverID, online, func(f [][]byte) [][]byte {
			f[1], f[2] = []byte("1000"), []byte("QmQqbmWxfVUyrxm2ptg8NQjWCpNXpTDSVctQsCj5dWzUnq")
			return f
		})},
		{"delegation of another peer ID", "INVALID: the delegation is of another server",
			e.delegation(serverID, online, set(2, []byte("QmQqbmWxfVUyrxm2ptg8NQjWCpNXpTDSVctQsCj5dWzUnq")))},
		{"another algorithm", "INVALID: unknown online key algorithm", e.delegation(serverID, online, set(3, []byte("ecdsa-p384-sha384")))},
		{"another tag", "INVALID: not a delegation", e.delegation(serverID, online, set(0, []byte("tsnode-online-key-v2")))},
		{"a field missing", "INVALID: malformed delegation", e.delegation(serverID, online, func(f [][]byte) [][]byte { return f[:6] })},
		{"a field too many", "INVALID: malformed delegation", e.delegation(serverID, online, func(f [][]byte) [][]byte { return append(f, nil) })},
		{"delegation truncated", "INVALID: malformed delegation", e.write(func(th *protocol.ReceiptTreeHead) {
			d := e.receiptBytes(th.Delegation)
			d = d[:len(d)-1]
			th.Delegation, th.DelegationSignature = b64(d), e.signAs(serverID, d)
		})},
		{"P-384 key", "INVALID: malformed online key", e.delegation(serverID, p384, set(4, p384SPKI))},
		{"point off the curve", "INVALID: malformed online key", e.delegation(serverID, online, func(f [][]byte) [][]byte {
			k := bytes.Clone(f[4])
			k[60] ^= 0x01
			f[4] = k
			return f
		})},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := runInCopy(t, s.online, c.edit)
			switch {
			case c.want == "" && (err != nil || !strings.Contains(out, "\nVALID: hello.txt ")):
				t.Fatalf("the §11.6 commands reject a valid copy: %v\n%s%s", err, out, errOut)
			case c.want != "" && err == nil:
				t.Fatalf("the §11.6 commands accept a tampered copy:\n%s", out)
			case c.want != "" && !strings.Contains(errOut, c.want):
				t.Fatalf("the §11.6 commands fail with\n%s\nwant %q", errOut, c.want)
			}
		})
	}
}

// receiptBytes decodes a base64 member.
func (e *onlineEdits) receiptBytes(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// signAs is the base64 of the test key id's signature of b.
func (e *onlineEdits) signAs(id identity.ID, b []byte) string {
	key, err := loadKey(e.testdata, id)
	if err != nil {
		e.t.Fatal(err)
	}
	sig, err := protocol.Sign(key, b)
	if err != nil {
		e.t.Fatal(err)
	}
	return b64(sig)
}

// TestOpensslDays checks the days function of §11.6 against Go's
// calendar, across month ends, leap days and the century rules.
func TestOpensslDays(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not on PATH")
	}
	block := shellBlocks(t, readSpec(t), "### 11.6")
	i := strings.Index(block, "\n# online_head")
	if i < 0 {
		t.Fatal("PROTOCOL.md §11.6 no longer defines days before online_head")
	}
	var dates []time.Time
	for _, d := range []string{"1999-12-31", "2000-01-01", "2000-02-28", "2000-02-29", "2000-03-01", "2024-02-29", "2026-01-31", "2026-02-28",
		"2026-03-01", "2026-11-25", "2026-12-26", "2027-01-01", "2100-02-28", "2100-03-01", "0001-01-01", "9999-12-31"} {
		tm, err := time.Parse("2006-01-02", d)
		if err != nil {
			t.Fatal(err)
		}
		dates = append(dates, tm)
	}
	script := "set -euo pipefail\n" + block[:i] + "\n"
	for _, d := range dates {
		script += fmt.Sprintf("days %sT12:00:00.000000000Z\n", d.Format("2006-01-02"))
	}
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("days: %v\n%s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(dates) {
		t.Fatalf("days printed %q for %d dates", out, len(dates))
	}
	first, err := strconv.Atoi(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	for k, l := range lines {
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatal(err)
		}
		if want := int((dates[k].Unix() - dates[0].Unix()) / 86400); n-first != want {
			t.Errorf("days %s − days %s = %d, want %d", dates[k].Format("2006-01-02"), dates[0].Format("2006-01-02"), n-first, want)
		}
	}
}
