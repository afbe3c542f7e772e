package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

func testRoot(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readSpec(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testRoot(t), "docs", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGeneratedFilesAreFresh is `go run ./internal/docexample -check`:
// the worked example of PROTOCOL.md and docs/example/ must be what the
// code generates today. generate itself fails when the specification's
// encodings or Merkle algorithms disagree with the code.
func TestGeneratedFilesAreFresh(t *testing.T) {
	stale, err := staleFiles(testRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) > 0 {
		t.Fatalf("stale generated files %v: run go run ./internal/docexample and commit them", stale)
	}
}

// section returns the text of the part of doc under the heading that
// starts with prefix (for example "## 6." or "### 11.2"), up to the next
// heading of the same or a higher level. Lines in code blocks are never
// headings.
func section(t *testing.T, doc, prefix string) string {
	t.Helper()
	level := strings.Index(prefix, " ")
	var out []string
	in, code := false, false
	for _, line := range strings.SplitAfter(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			code = !code
		}
		if !code && strings.HasPrefix(line, "#") {
			l := strings.Index(line, " ")
			if in && l > 0 && l <= level {
				break
			}
			if strings.HasPrefix(line, prefix) {
				in = true
			}
		}
		if in {
			out = append(out, line)
		}
	}
	if !in {
		t.Fatalf("PROTOCOL.md has no heading %q", prefix)
	}
	return strings.Join(out, "")
}

// TestProtocolParameters ties the parameter tables of PROTOCOL.md to the
// constants of the code.
func TestProtocolParameters(t *testing.T) {
	doc := readSpec(t)
	dur := func(d time.Duration) string {
		if d%time.Minute == 0 {
			return fmt.Sprintf("%d min", d/time.Minute)
		}
		return fmt.Sprintf("%d s", d/time.Second)
	}
	for _, c := range []struct{ section, want string }{
		{"## 2.", "| `tsnode-timestamp-v1` | signed statement (§4.1) | 9 |"},
		{"## 3.", fmt.Sprintf("A sealed box is %d bytes longer than its plaintext", protocol.SealOverhead)},
		{"## 4.", fmt.Sprintf("| 0 | tag | `%q` | %d |", protocol.StatementTag, len(protocol.StatementTag))},
		{"## 4.", fmt.Sprintf("field 0 is `%q` (%d bytes)", protocol.LeafTag, len(protocol.LeafTag))},
		{"## 5.", fmt.Sprintf("| 0 | tag | `%q` | %d |", protocol.TreeHeadTag, len(protocol.TreeHeadTag))},
		{"## 5.", fmt.Sprintf("at most %d stamps", authority.DefaultMaxBatch)},

		{"## 6.", fmt.Sprintf("| Protocol ID | `%s` |", protocol.StampProtocolID)},
		{"## 6.", fmt.Sprintf("| Resource-manager service | `%s` |", protocol.StampServiceName)},
		{"## 6.", fmt.Sprintf("| Maximum request frame body | %d bytes", protocol.MaxStampRequestSize)},
		{"## 6.", fmt.Sprintf("| Maximum response frame body | %d bytes", protocol.MaxStampResponseSize)},
		{"## 6.", fmt.Sprintf("| Timeout | %s for the whole exchange", dur(protocol.StampStreamTimeout))},
		{"## 6.", fmt.Sprintf("| `%s` |", protocol.StatusOK)},
		{"## 6.", fmt.Sprintf("| `%s` |", protocol.StatusBadRequest)},
		{"## 6.", fmt.Sprintf("| `%s` |", protocol.StatusUnknownID)},
		{"## 6.", fmt.Sprintf("| `%s` |", protocol.StatusPeerMismatch)},
		{"## 6.", fmt.Sprintf("| `%s` |", protocol.StatusInternal)},

		{"## 7.", fmt.Sprintf("| Protocol ID | `%s` |", protocol.SessionProtocolID)},
		{"## 7.", fmt.Sprintf("| Resource-manager service | `%s` |", protocol.SessionServiceName)},
		{"## 7.", fmt.Sprintf("| Maximum hello and accept frame body | %d bytes |", protocol.MaxSessionHelloSize)},
		{"## 7.", fmt.Sprintf("| Maximum request frame body | %d bytes", protocol.MaxSessionRequestSize)},
		{"## 7.", fmt.Sprintf("| Maximum reply frame body | %d bytes |", protocol.MaxSessionReplySize)},
		{"## 7.", fmt.Sprintf("| at most %d unanswered", protocol.MaxInFlight)},
		{"## 7.", fmt.Sprintf("| Hello timeout | %s ", dur(protocol.SessionHelloTimeout))},
		{"## 7.", fmt.Sprintf("| Idle timeout | %s:", dur(protocol.SessionIdleTimeout))},

		{"## 8.", fmt.Sprintf("| Protocol ID | `%s` |", protocol.LogProtocolID)},
		{"## 8.", fmt.Sprintf("| Resource-manager service | `%s` |", protocol.LogServiceName)},
		{"## 8.", fmt.Sprintf("| Maximum request frame body | %d bytes", protocol.MaxLogRequestSize)},
		{"## 8.", fmt.Sprintf("| Maximum response frame body | %d bytes |", protocol.MaxLogResponseSize)},
		{"## 8.", fmt.Sprintf("| Timeout | %s for the whole exchange |", dur(protocol.LogStreamTimeout))},
		{"## 8.", fmt.Sprintf("`%q`", protocol.ConsistencyFormat)},

		{"## 9.", fmt.Sprintf("| Protocol ID | `%s` |", protocol.RelayProtocolID)},
		{"## 9.", fmt.Sprintf("| Resource-manager service | `%s` |", protocol.RelayServiceName)},
		{"## 9.", fmt.Sprintf("| Maximum header frame body | %d bytes (%d for the receipt + %d sealing + %d) |",
			protocol.MaxRelayHeaderSize, protocol.MaxReceiptSize, protocol.SealOverhead, protocol.MaxRelayHeaderSize-protocol.MaxReceiptSize-protocol.SealOverhead)},
		{"## 9.", fmt.Sprintf("| Chunk plaintext size | %d bytes at most |", protocol.ChunkSize)},
		{"## 9.", fmt.Sprintf("| Maximum chunk frame body | %d bytes (1 + %d + 16) |", protocol.MaxRelayFrameSize, protocol.ChunkSize)},
		{"## 9.", fmt.Sprintf("| Maximum verdict frame body | %d bytes |", protocol.MaxVerdictSize)},
		{"## 9.", fmt.Sprintf("| Timeout | %s for each frame", dur(protocol.RelayIdleTimeout))},

		{"## 10.", fmt.Sprintf("of at most %d bytes", protocol.MaxReceiptSize)},
		{"## 10.", fmt.Sprintf("`%q` or `%q`", protocol.ReceiptFormatV1, protocol.ReceiptFormatV2)},
	} {
		if !strings.Contains(section(t, doc, c.section), c.want) {
			t.Errorf("PROTOCOL.md %s does not say %q", c.section, c.want)
		}
	}
	verdicts := section(t, doc, "### 9.5")
	for _, v := range []string{protocol.VerdictValid, protocol.VerdictHashMismatch, protocol.VerdictBadSignature,
		protocol.VerdictBadProof, protocol.VerdictUntrustedSigner, protocol.VerdictRetiredKey, protocol.VerdictWrongServerKey,
		protocol.VerdictMalformedReceipt, protocol.VerdictTruncated, protocol.VerdictBadChunk,
		protocol.VerdictSizeMismatch, protocol.VerdictPeerMismatch, protocol.VerdictInternal,
		protocol.VerdictTooLarge} {
		if !strings.Contains(verdicts, "| `"+v+"` |") {
			t.Errorf("PROTOCOL.md §9.5 does not list the verdict code %q", v)
		}
	}
}

// TestTagsMatchCode checks the record tags and other versioned strings
// both ways: every one the code defines (exported or not) appears in
// PROTOCOL.md, and every one PROTOCOL.md names exists in the code.
func TestTagsMatchCode(t *testing.T) {
	doc := readSpec(t)
	dir := filepath.Join(testRoot(t), "protocol")
	fset := token.NewFileSet()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Protocol IDs and tags: "/tsnode/stamp/1.0.0", "tsnode/stamp-request/v1",
	// "tsnode-timestamp-v1". (Not import paths or logger names.)
	versioned := regexp.MustCompile(`^(/tsnode/[a-z]+/[0-9]+\.[0-9]+\.[0-9]+|tsnode[-/][a-z0-9/-]*v[0-9]+)$`)
	code := map[string]bool{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			if _, ok := n.(*ast.ImportSpec); ok {
				return false
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && versioned.MatchString(s) {
				code[s] = true
			}
			return true
		})
	}
	if len(code) < 20 {
		t.Fatalf("found only %d versioned strings in protocol/: %v", len(code), code)
	}
	for s := range code {
		if !strings.Contains(doc, s) {
			t.Errorf("protocol/ uses %q, PROTOCOL.md never mentions it", s)
		}
	}
	for _, m := range regexp.MustCompile("`\"?(/?tsnode[-/][a-z0-9./-]*v[0-9.]+)\"?`").FindAllStringSubmatch(doc, -1) {
		if !code[m[1]] {
			t.Errorf("PROTOCOL.md names %q, which protocol/ does not define", m[1])
		}
	}
}

// TestHandAlgorithmsMatchTlog checks the Merkle algorithms of §5, as
// written in byhand.go, against golang.org/x/mod/sumdb/tlog, which the
// server uses, for every index and pair of sizes up to 40 leaves; and
// that they refuse damaged proofs.
func TestHandAlgorithmsMatchTlog(t *testing.T) {
	const n = 40
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(ix []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(ix))
		for i, x := range ix {
			out[i] = stored[x]
		}
		return out, nil
	})
	var leaves [][]byte
	var lh []hash
	for i := range n {
		leaf := fmt.Appendf(nil, "leaf %d", i)
		leaves = append(leaves, leaf)
		lh = append(lh, leafHash(leaf))
		hs, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	roots := make([]tlog.Hash, n+1)
	for size := 1; size <= n; size++ {
		var err error
		if roots[size], err = tlog.TreeHash(int64(size), reader); err != nil {
			t.Fatal(err)
		}
		if treeHash(lh, 0, size) != roots[size] {
			t.Fatalf("MTH of %d leaves differs from tlog's", size)
		}
		for index := range size {
			p, err := tlog.ProveRecord(int64(size), int64(index), reader)
			if err != nil {
				t.Fatal(err)
			}
			proof := hashes(p)
			if _, _, err := checkInclusion(leaves[index], uint64(index), uint64(size), roots[size], proof); err != nil {
				t.Fatalf("leaf %d of %d: %v", index, size, err)
			}
			for i := range proof {
				bad := append([]hash(nil), proof...)
				bad[i][0] ^= 1
				if _, _, err := checkInclusion(leaves[index], uint64(index), uint64(size), roots[size], bad); err == nil {
					t.Fatalf("leaf %d of %d: proof with hash %d damaged verifies", index, size, i)
				}
			}
			if len(proof) > 0 {
				if _, _, err := checkInclusion(leaves[index], uint64(index), uint64(size), roots[size], proof[1:]); err == nil {
					t.Fatalf("leaf %d of %d: shortened proof verifies", index, size)
				}
			}
			if _, _, err := checkInclusion(leaves[index], uint64(index), uint64(size), roots[size], append(proof, hash{})); err == nil {
				t.Fatalf("leaf %d of %d: lengthened proof verifies", index, size)
			}
			if index+1 < size {
				if _, _, err := checkInclusion(leaves[index], uint64(index+1), uint64(size), roots[size], proof); err == nil {
					t.Fatalf("leaf %d of %d verifies at index %d", index, size, index+1)
				}
			}
		}
	}
	for second := 1; second <= n; second++ {
		for first := 1; first <= second; first++ {
			var proof []hash
			if first < second {
				p, err := tlog.ProveTree(int64(second), int64(first), reader)
				if err != nil {
					t.Fatal(err)
				}
				proof = hashes(p)
			}
			if _, _, err := checkConsistency(uint64(first), uint64(second), roots[first], roots[second], proof); err != nil {
				t.Fatalf("consistency %d -> %d: %v", first, second, err)
			}
			for i := range proof {
				bad := append([]hash(nil), proof...)
				bad[i][31] ^= 1
				if _, _, err := checkConsistency(uint64(first), uint64(second), roots[first], roots[second], bad); err == nil {
					t.Fatalf("consistency %d -> %d: proof with hash %d damaged verifies", first, second, i)
				}
			}
			if first < second && first > 1 {
				if _, _, err := checkConsistency(uint64(first), uint64(second), roots[first-1], roots[second], proof); err == nil {
					t.Fatalf("consistency %d -> %d verifies with the root of size %d", first, second, first-1)
				}
			}
		}
	}
}

// shellBlocks returns the ```sh blocks of the part of doc under heading.
func shellBlocks(t *testing.T, doc, heading string) string {
	t.Helper()
	var out []string
	rest := section(t, doc, heading)
	for {
		i := strings.Index(rest, "\n```sh\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("\n```sh\n"):]
		j := strings.Index(rest, "\n```\n")
		if j < 0 {
			t.Fatalf("PROTOCOL.md %s: unterminated sh block", heading)
		}
		out = append(out, rest[:j+1])
		rest = rest[j:]
	}
	if len(out) == 0 {
		t.Fatalf("PROTOCOL.md %s has no sh block", heading)
	}
	return strings.Join(out, "\n")
}

// TestOpensslCommands runs the commands of PROTOCOL.md §11, exactly as
// written there, on copies of docs/example/: they must accept the v1 and
// v2 receipts, print what §11 shows, and reject every tampered copy with
// the expected reason.
func TestOpensslCommands(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "xxd", "sha256sum", "base64", "sed", "sort", "cut", "tr", "wc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH; the commands of PROTOCOL.md §11 need it", tool)
		}
	}
	root := testRoot(t)
	doc := readSpec(t)
	setup := shellBlocks(t, doc, "### 11.1")
	v1 := setup + shellBlocks(t, doc, "### 11.2") + shellBlocks(t, doc, "### 11.4")
	v2 := setup + shellBlocks(t, doc, "### 11.3") + shellBlocks(t, doc, "### 11.4")

	example := filepath.Join(root, "docs", "example")
	// scratch copies docs/example into a new directory and applies edit.
	scratch := func(t *testing.T, edit func(dir string)) string {
		dir := t.TempDir()
		for _, name := range []string{"hello.txt", "hello.txt.receipt", "hello.txt.v2.receipt", "hello.txt.v3.receipt", "server.pem", "3000.pem", "3001.pem"} {
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
		return dir
	}
	run := func(t *testing.T, dir, script string) (stdout, stderr string, err error) {
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		return o.String(), e.String(), err
	}

	// The output §11 shows for the v1 receipt.
	shown := section(t, doc, "### 11.4")
	i := strings.Index(shown, "the v1 script prints\n\n```\n")
	if i < 0 {
		t.Fatal("PROTOCOL.md §11.4 does not show the v1 script's output")
	}
	shown = shown[i+len("the v1 script prints\n\n```\n"):]
	shown = shown[:strings.Index(shown, "```")]

	t.Run("v1 valid", func(t *testing.T) {
		out, errOut, err := run(t, scratch(t, nil), v1)
		if err != nil {
			t.Fatalf("the §11 v1 commands reject docs/example: %v\n%s%s", err, out, errOut)
		}
		if out != shown {
			t.Errorf("the §11 v1 commands print\n%s\nPROTOCOL.md shows\n%s", out, shown)
		}
	})
	t.Run("v2 valid", func(t *testing.T) {
		out, errOut, err := run(t, scratch(t, nil), v2)
		if err != nil {
			t.Fatalf("the §11 v2 commands reject docs/example: %v\n%s%s", err, out, errOut)
		}
		want := strings.Replace(shown, "2026-11-25T12:00:00.123456789Z, serial 0,", "2026-11-25T12:00:01.300000000Z, serial 5,", 1)
		if out != want {
			t.Errorf("the §11 v2 commands print\n%s\nwant\n%s", out, want)
		}
	})

	editReceipt := func(name string, f func(r *protocol.Receipt)) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, name)
			r, err := protocol.ReadReceiptFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f(r)
			if err := os.WriteFile(p, r.Marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	flipB64 := func(s string, at int) string {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x01
		return base64.StdEncoding.EncodeToString(b)
	}
	appendToDoc := func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, "hello.txt"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("!"))
		f.Close()
	}
	otherKey := func(dir string) {
		b, err := os.ReadFile(filepath.Join(root, "internal", "testkeys", "testdata", "public", "1000.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "server.pem"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, script, want string
		edit               func(dir string)
	}{
		{"v1 document changed", v1, "INVALID: document hash mismatch", appendToDoc},
		{"v1 signature changed", v1, "INVALID: bad server signature",
			editReceipt("hello.txt.receipt", func(r *protocol.Receipt) { r.Signature = flipB64(r.Signature, 100) })},
		{"v1 statement changed", v1, "INVALID: bad server signature",
			editReceipt("hello.txt.receipt", func(r *protocol.Receipt) { r.SignedData = flipB64(r.SignedData, 80) })},
		{"v1 another key", v1, "INVALID: bad server signature", otherKey},
		{"v1 signed v2 head as statement", v1, "INVALID: malformed statement",
			editReceipt("hello.txt.receipt", func(r *protocol.Receipt) {
				v2, err := protocol.ReadReceiptFile(filepath.Join(example, "hello.txt.v2.receipt"))
				if err != nil {
					t.Fatal(err)
				}
				r.SignedData, r.Signature = v2.TreeHead.SignedData, v2.TreeHead.Signature
			})},
		{"v2 document changed", v2, "INVALID: document hash mismatch", appendToDoc},
		{"v2 tree head signature changed", v2, "INVALID: bad server signature",
			editReceipt("hello.txt.v2.receipt", func(r *protocol.Receipt) { r.TreeHead.Signature = flipB64(r.TreeHead.Signature, 7) })},
		{"v2 tree head changed", v2, "INVALID: bad server signature",
			editReceipt("hello.txt.v2.receipt", func(r *protocol.Receipt) { r.TreeHead.SignedData = flipB64(r.TreeHead.SignedData, 90) })},
		{"v2 another key", v2, "INVALID: bad server signature", otherKey},
		{"v2 leaf changed", v2, "INVALID: bad inclusion proof",
			editReceipt("hello.txt.v2.receipt", func(r *protocol.Receipt) { r.Leaf = flipB64(r.Leaf, 250) })},
		{"v2 proof hash changed", v2, "INVALID: bad inclusion proof",
			editReceipt("hello.txt.v2.receipt", func(r *protocol.Receipt) {
				b, _ := hex.DecodeString(r.InclusionProof[1])
				b[0] ^= 0x80
				r.InclusionProof[1] = hex.EncodeToString(b)
			})},
		{"v2 proof hash dropped", v2, "INVALID: bad inclusion proof",
			editReceipt("hello.txt.v2.receipt", func(r *protocol.Receipt) { r.InclusionProof = r.InclusionProof[:2] })},
		{"v2 proofs swapped", v2, "INVALID: bad inclusion proof",
			editReceipt("hello.txt.v2.receipt", func(r *protocol.Receipt) {
				r.InclusionProof[0], r.InclusionProof[2] = r.InclusionProof[2], r.InclusionProof[0]
			})},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := run(t, scratch(t, c.edit), c.script)
			if err == nil {
				t.Fatalf("the §11 commands accept a tampered copy:\n%s", out)
			}
			if !strings.Contains(errOut, c.want) {
				t.Fatalf("the §11 commands fail with\n%s\nwant %q", errOut, c.want)
			}
		})
	}

	testOpensslCosignature(t, doc, setup, scratch, run, editReceipt, flipB64)

	// §11.4 alone: the derived peer ID must be compared with the one the
	// statement names. Statements naming another peer are impossible
	// without the server's key, so give it hand-made fields.
	peerCheck := func(t *testing.T, key, names string) (string, error) {
		dir := scratch(t, otherKeyIf(t, root, key))
		fields := []string{
			hex.EncodeToString([]byte(protocol.StatementTag)), "", fmt.Sprintf("%x", sha256.Sum256(document)),
			hex.EncodeToString([]byte("2026-11-25T12:00:00.123456789Z")), "0000000000000001", "", "", "",
			hex.EncodeToString([]byte(names)), "",
		}
		if err := os.WriteFile(filepath.Join(dir, "fake.fields"), []byte(strings.Join(fields, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := run(t, dir, setup+"stmt=fake.fields\n"+shellBlocks(t, doc, "### 11.4"))
		return errOut, err
	}
	t.Run("peer ID of another key", func(t *testing.T) {
		const requesterPeer = "QmQqbmWxfVUyrxm2ptg8NQjWCpNXpTDSVctQsCj5dWzUnq"
		if errOut, err := peerCheck(t, "1000", requesterPeer); err != nil {
			t.Fatalf("§11.4 rejects the key of 1000 for its own peer ID: %v\n%s", err, errOut)
		}
		errOut, err := peerCheck(t, "server", requesterPeer)
		if err == nil || !strings.Contains(errOut, "INVALID: wrong server key") {
			t.Fatalf("§11.4 accepts the server key for the peer ID of 1000: %v\n%s", err, errOut)
		}
	})
}

// testOpensslCosignature runs §11.5, exactly as written, on the v3
// receipt of docs/example/ (its first cosignature, and with `sed -n 2p`
// and the key 3001.pem its second): it must print what §11.5 shows, and
// reject tampered copies with the expected reason. It also runs §11.3 on
// the v3 receipt with its v3 members removed, as §11.5 says.
func testOpensslCosignature(t *testing.T, doc, setup string,
	scratch func(*testing.T, func(string)) string,
	run func(*testing.T, string, string) (string, string, error),
	editReceipt func(string, func(*protocol.Receipt)) func(string),
	flipB64 func(string, int) string) {
	root := testRoot(t)
	block := shellBlocks(t, doc, "### 11.5")
	v3 := setup + block
	const first, second = "| sed -n 1p |", "| sed -n 2p |"
	if strings.Count(block, first) != 2 || !strings.Contains(block, "\nwitness=3000.pem ") {
		t.Fatalf("PROTOCOL.md §11.5 no longer takes the first cosignature with %q and witness=3000.pem", first)
	}
	v3second := setup + strings.Replace(strings.ReplaceAll(block, first, second), "\nwitness=3000.pem ", "\nwitness=3001.pem ", 1)

	shown := section(t, doc, "### 11.5")
	const intro = "it prints\n\n```\n"
	i := strings.Index(shown, intro)
	if i < 0 {
		t.Fatal("PROTOCOL.md §11.5 does not show the output of its commands")
	}
	shown = shown[i+len(intro):]
	shown = shown[:strings.Index(shown, "```")]

	t.Run("v3 cosignature valid", func(t *testing.T) {
		out, errOut, err := run(t, scratch(t, nil), v3)
		if err != nil {
			t.Fatalf("the §11.5 commands reject docs/example: %v\n%s%s", err, out, errOut)
		}
		if out != shown {
			t.Errorf("the §11.5 commands print\n%s\nPROTOCOL.md shows\n%s", out, shown)
		}
	})
	t.Run("v3 second cosignature valid", func(t *testing.T) {
		out, errOut, err := run(t, scratch(t, nil), v3second)
		if err != nil {
			t.Fatalf("the §11.5 commands (second cosignature) reject docs/example: %v\n%s%s", err, out, errOut)
		}
		if !strings.HasPrefix(out, "Verified OK\nVerified OK\ncosigned by 3001 (QmbxFVDxZkmhuRSD1FPBauG7LmMiVpQXac5NCpM8VHeDXE) at 2026-11-25T12:01:02.250000000Z: head of size 7 at ") {
			t.Errorf("the §11.5 commands (second cosignature) print\n%s", out)
		}
	})
	t.Run("v3 as v2", func(t *testing.T) {
		asV2 := func(dir string) {
			r, err := protocol.ReadReceiptFile(filepath.Join(dir, "hello.txt.v3.receipt"))
			if err != nil {
				t.Fatal(err)
			}
			r.CosignedHead, r.ConsistencyProof, r.Cosignatures = nil, nil, nil
			if err := os.WriteFile(filepath.Join(dir, "hello.txt.v2.receipt"), r.Marshal(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		script := setup + shellBlocks(t, doc, "### 11.3") + shellBlocks(t, doc, "### 11.4")
		out, errOut, err := run(t, scratch(t, asV2), script)
		if err != nil || !strings.Contains(out, "VALID: hello.txt") {
			t.Fatalf("§11.3 rejects the v3 receipt without its v3 members: %v\n%s%s", err, out, errOut)
		}
	})

	testdata := filepath.Join(root, "internal", "testkeys", "testdata")
	signAsWitness := func(id identity.ID, data []byte) string {
		key, err := loadKey(testdata, id)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := protocol.Sign(key, data)
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(sig)
	}
	// resign makes the first cosignature the record enc, validly signed
	// by 3000.
	resign := func(enc []byte) func(r *protocol.Receipt) {
		return func(r *protocol.Receipt) {
			r.Cosignatures[0].SignedData = base64.StdEncoding.EncodeToString(enc)
			r.Cosignatures[0].Signature = signAsWitness("3000", enc)
		}
	}
	v3r, err := protocol.ReadReceiptFile(filepath.Join(testRoot(t), "docs", "example", "hello.txt.v3.receipt"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := v3r.WitnessedOf()
	if err != nil {
		t.Fatal(err)
	}
	sth, err := v3r.TreeHeadOf()
	if err != nil {
		t.Fatal(err)
	}
	otherHead := *w.Cosigs[0].Cosig
	otherHead.HeadTime = sth.Head.Time // the receipt's tree head, not the cosigned one
	wrongTag := protocol.EncodeRecord("tsnode-cosignature-v2", parseFields(t, w.Cosigs[0].Encoded)[1:]...)

	const v3name = "hello.txt.v3.receipt"
	witnessKey := func(id string) func(dir string) {
		return func(dir string) {
			b, err := os.ReadFile(filepath.Join(testdata, "public", id+".pem"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "3000.pem"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name, want string
		edit       func(dir string)
	}{
		{"v3 cosignature signature changed", "INVALID: bad cosignature",
			editReceipt(v3name, func(r *protocol.Receipt) { r.Cosignatures[0].Signature = flipB64(r.Cosignatures[0].Signature, 9) })},
		{"v3 cosignature changed", "INVALID: bad cosignature",
			editReceipt(v3name, func(r *protocol.Receipt) { r.Cosignatures[0].SignedData = flipB64(r.Cosignatures[0].SignedData, 240) })},
		{"v3 another witness's key", "INVALID: bad cosignature", witnessKey("3001")},
		{"v3 the server's key as the witness's", "INVALID: bad cosignature", witnessKey("server")},
		{"v3 cosignatures swapped", "INVALID: bad cosignature",
			editReceipt(v3name, func(r *protocol.Receipt) { r.Cosignatures[0], r.Cosignatures[1] = r.Cosignatures[1], r.Cosignatures[0] })},
		{"v3 cosigned head signature changed", "INVALID: bad server signature (cosigned head)",
			editReceipt(v3name, func(r *protocol.Receipt) { r.CosignedHead.Signature = flipB64(r.CosignedHead.Signature, 3) })},
		{"v3 cosigned head changed", "INVALID: bad server signature (cosigned head)",
			editReceipt(v3name, func(r *protocol.Receipt) { r.CosignedHead.SignedData = flipB64(r.CosignedHead.SignedData, 100) })},
		{"v3 cosigned head is the tree head", "INVALID: the cosignature is of another head",
			editReceipt(v3name, func(r *protocol.Receipt) { h := *r.TreeHead; r.CosignedHead = &h })},
		{"v3 cosignature of another head", "INVALID: the cosignature is of another head",
			editReceipt(v3name, resign(otherHead.Encode()))},
		{"v3 witness signed the head itself", "INVALID: malformed cosignature",
			editReceipt(v3name, resign(w.Head.Encoded))},
		{"v3 cosignature of another tag", "INVALID: not a cosignature",
			editReceipt(v3name, resign(wrongTag))},
		{"v3 cosignature truncated", "INVALID: malformed cosignature",
			editReceipt(v3name, resign(w.Cosigs[0].Encoded[:len(w.Cosigs[0].Encoded)-1]))},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, err := run(t, scratch(t, c.edit), v3)
			if err == nil {
				t.Fatalf("the §11.5 commands accept a tampered copy:\n%s", out)
			}
			if !strings.Contains(errOut, c.want) {
				t.Fatalf("the §11.5 commands fail with\n%s\nwant %q", errOut, c.want)
			}
		})
	}
}

// parseFields splits a record into its fields, the tag first.
func parseFields(t *testing.T, b []byte) [][]byte {
	t.Helper()
	f, err := parseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestWitnessedExample checks docs/example/hello.txt.v3.receipt as a
// verifier that requires 2 of the witnesses 3000 and 3001 within 5 s: it
// is witnessed by both, and not with a tolerance shorter than the later
// cosignature's distance from its head, nor by witnesses it does not
// carry.
func TestWitnessedExample(t *testing.T) {
	root := testRoot(t)
	testdata := filepath.Join(root, "internal", "testkeys", "testdata")
	dir, err := identity.LoadDirectory(testdata)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := protocol.NewTrust(dir, nil, serverID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := protocol.ReadReceiptFile(filepath.Join(root, "docs", "example", "hello.txt.v3.receipt"))
	if err != nil {
		t.Fatal(err)
	}
	docHash := sha256.Sum256(document)
	policy := func(k int, tol time.Duration, ids ...identity.ID) *protocol.WitnessPolicy {
		p, err := protocol.NewWitnessPolicy(dir, k, tol, ids...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	st, good, err := r.VerifyWitnessed(trust, policy(2, 5*time.Second, "3000", "3001"), docHash[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || good[0].Cosig.WitnessID != "3000" || good[1].Cosig.WitnessID != "3001" || st.Serial != exampleIndex {
		t.Fatalf("witnessed by %d cosignatures, serial %d", len(good), st.Serial)
	}
	if _, _, err := r.VerifyWitnessed(trust, policy(2, 900*time.Millisecond, "3000", "3001"), docHash[:], nil); !errors.Is(err, protocol.ErrNotWitnessed) {
		t.Errorf("witnessed within 0.9 s: %v", err)
	}
	if _, _, err := r.VerifyWitnessed(trust, policy(2, 5*time.Second, "3000", "3002"), docHash[:], nil); !errors.Is(err, protocol.ErrNotWitnessed) {
		t.Errorf("witnessed by 3000 and 3002: %v", err)
	}
	if _, _, err := r.VerifyWitnessed(trust, policy(1, 5*time.Second, "3002", "3001"), docHash[:], nil); err != nil {
		t.Errorf("not witnessed by 1 of 3002 and 3001: %v", err)
	}
	v2, err := protocol.ReadReceiptFile(filepath.Join(root, "docs", "example", "hello.txt.v2.receipt"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.WitnessedOf()
	if err != nil {
		t.Fatal(err)
	}
	if again := protocol.NewWitnessedReceipt(v2, w.Head, w.Proof, w.Cosigs).Marshal(); !bytes.Equal(again, r.Marshal()) {
		t.Error("the v3 receipt is not the v2 receipt of docs/example with its witness part")
	}
}

// otherKeyIf returns an edit that puts the public key of id in place of
// server.pem (nothing for "server").
func otherKeyIf(t *testing.T, root, id string) func(dir string) {
	if id == "server" {
		return nil
	}
	return func(dir string) {
		b, err := os.ReadFile(filepath.Join(root, "internal", "testkeys", "testdata", "public", id+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "server.pem"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
