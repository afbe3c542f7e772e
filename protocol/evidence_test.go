package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// checkEvidence asserts that e proves kind, offline and as a file.
func checkEvidence(t *testing.T, trust *Trust, e *Evidence, kind string) {
	t.Helper()
	if e == nil {
		t.Fatalf("no evidence found, want %s", kind)
	}
	if k := e.Kind(); k != kind {
		t.Fatalf("Kind %q, want %q", k, kind)
	}
	if k, err := e.Verify(trust); err != nil || k != kind {
		t.Fatalf("Verify: %q, %v; want %q", k, err, kind)
	}
	f := e.File()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseEvidenceFile(b)
	if err != nil {
		t.Fatalf("the evidence file does not parse: %v\n%s", err, b)
	}
	if k, err := back.Verify(trust); err != nil || k != kind {
		t.Fatalf("file Verify: %q, %v; want %q", k, err, kind)
	}
	e2, err := back.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if !SameHead(e2.First, e.First) || !SameHead(e2.Second, e.Second) || len(e2.Path) != len(e.Path) {
		t.Fatal("the file does not give back the evidence")
	}
	for i := range e.Path {
		if e2.Path[i] != e.Path[i] {
			t.Fatalf("path[%d] differs", i)
		}
	}
	// The gossip message gives it back too.
	m, err := ParseGossipMessage(EncodeGossipEvidence(e))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := m.Evidence.Verify(trust); err != nil || k != kind {
		t.Fatalf("gossiped evidence: %q, %v", k, err)
	}
}

func TestEvidenceFork(t *testing.T) {
	trust := trustOf(t, witnessDir(t))
	a, b := newMemTree(t, "a", 2, 8), newMemTree(t, "b", 2, 8)
	for _, size := range []uint64{1, 3, 4, 8} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ha, hb := a.head(t, size, logTime), b.head(t, size, logTime.Add(time.Second))
			if size <= 2 { // shared leaves: the same tree
				if e := FindEquivocation(ha, hb, nil); e != nil {
					t.Fatalf("evidence %s of two heads of one tree", e.Kind())
				}
				_, err := (&Evidence{First: ha, Second: hb}).Verify(trust)
				wantErr(t, err, ErrNoEquivocation, fmt.Sprintf("two heads of size %d with the same root", size))
				return
			}
			checkEvidence(t, trust, FindEquivocation(ha, hb, nil), EquivocationFork)
			checkEvidence(t, trust, FindEquivocation(hb, ha, nil), EquivocationFork)
			// A path is not needed, and one given does not matter.
			checkEvidence(t, trust, &Evidence{First: hb, Second: ha, Path: []tlog.Hash{hashOf(1)}}, EquivocationFork)
		})
	}
}

func TestEvidenceInconsistent(t *testing.T) {
	trust := trustOf(t, witnessDir(t))
	const n = 13
	for _, shared := range []int{0, 2} {
		a := newMemTree(t, "a", shared, n)
		b := newMemTree(t, "b", shared, n)
		for _, c := range []struct{ m, n uint64 }{{1, 2}, {1, 13}, {2, 3}, {2, 13}, {3, 7}, {4, 5}, {4, 13}, {5, 8}, {6, 13}, {7, 8}, {8, 9}, {8, 13}, {12, 13}} {
			t.Run(fmt.Sprintf("shared %d, %d of A, %d of B", shared, c.m, c.n), func(t *testing.T) {
				ha := a.head(t, c.m, logTime)
				hb := b.head(t, c.n, logTime.Add(time.Second))
				path := b.path(t, c.m, c.n)
				if c.m <= uint64(shared) { // A's head is a prefix of B's
					if e := FindEquivocation(ha, hb, path); e != nil {
						t.Fatalf("evidence %s of consistent heads", e.Kind())
					}
					_, err := (&Evidence{First: ha, Second: hb, Path: path}).Verify(trust)
					wantErr(t, err, ErrNoEquivocation, "the path shows the first head is a prefix of the second")
					return
				}
				if e := FindEquivocation(ha, hb, nil); e != nil {
					t.Fatalf("evidence %s without a path", e.Kind())
				}
				e := FindEquivocation(ha, hb, path)
				checkEvidence(t, trust, e, EquivocationInconsistent)
				if e.First != ha || e.Second != hb {
					t.Fatal("the smaller head is not first")
				}
				e = FindEquivocation(hb, ha, path)
				checkEvidence(t, trust, e, EquivocationInconsistent)
				if e.First != ha {
					t.Fatal("the smaller head is not first")
				}
				// A's own path leads to A's root, not B's.
				_, err := (&Evidence{First: ha, Second: hb, Path: a.path(t, c.m, c.n)}).Verify(trust)
				wantErr(t, err, ErrNoEquivocation, "the path leads to root")
				// A path of another length.
				_, err = (&Evidence{First: ha, Second: hb, Path: path[1:]}).Verify(trust)
				wantErr(t, err, ErrNoEquivocation, fmt.Sprintf("a path of %d hashes cannot be between sizes %d and %d", len(path)-1, c.m, c.n))
			})
		}
	}
}

func TestEvidenceRollback(t *testing.T) {
	trust := trustOf(t, witnessDir(t))
	tree := newMemTree(t, "leaf", 0, 9)
	big := tree.head(t, 9, logTime)
	small := tree.head(t, 5, logTime.Add(time.Nanosecond))
	checkEvidence(t, trust, FindEquivocation(big, small, nil), EquivocationRollback)
	checkEvidence(t, trust, FindEquivocation(small, big, tree.path(t, 5, 9)), EquivocationRollback)
	// Dated in order, the same heads are not a rollback.
	small = tree.head(t, 5, logTime.Add(-time.Nanosecond))
	if e := FindEquivocation(big, small, tree.path(t, 5, 9)); e != nil {
		t.Fatalf("evidence %s of heads in order", e.Kind())
	}
	_, err := (&Evidence{First: small, Second: big}).Verify(trust)
	wantErr(t, err, ErrNoEquivocation, "heads of sizes 5 and 9, in order of time, and no consistency path")
	// Nor are heads of one size, the later re-signed.
	if e := FindEquivocation(tree.head(t, 9, logTime.Add(time.Second)), big, nil); e != nil {
		t.Fatalf("evidence %s of one tree signed twice", e.Kind())
	}
}

func TestEvidenceRefused(t *testing.T) {
	dir := witnessDir(t)
	trust := trustOf(t, dir)
	a, b := newMemTree(t, "a", 0, 9), newMemTree(t, "b", 0, 9)
	ha, hb := a.head(t, 5, logTime), b.head(t, 5, logTime)
	fork := &Evidence{First: ha, Second: hb}
	badSig := &SignedTreeHead{Head: hb.Head, Encoded: hb.Encoded, Signature: flip(hb.Signature, 7)}
	of1000 := headAs(t, "1000", 5, b.root(t, 5), logTime)
	for _, c := range []struct {
		name     string
		trust    *Trust
		e        *Evidence
		sentinel error
		msg      string
	}{
		{"the same head twice", trust, &Evidence{First: ha, Second: ha}, ErrNoEquivocation, "two heads of size 5 with the same root"},
		{"second signature changed", trust, &Evidence{First: ha, Second: badSig}, ErrBadSignature, "second head: bad server signature"},
		{"first signature changed", trust, &Evidence{First: badSig, Second: ha}, ErrBadSignature, "first head: "},
		{"untrusted signer", trust, &Evidence{First: ha, Second: of1000}, ErrUntrustedSigner, "second head: untrusted signer: 1000 is not a trusted authority"},
		{"different servers", trustOf(t, dir, "server", "1000"), &Evidence{First: ha, Second: of1000}, ErrDifferentServers, "the first head is of server, the second of 1000"},
		{"first larger than second", trust, &Evidence{First: a.head(t, 9, logTime), Second: b.head(t, 5, logTime)}, ErrMalformedEvidence, "the first head's size 9 is larger than the second's 5 (the smaller goes first)"},
		{"consistent, no path", trust, &Evidence{First: ha, Second: a.head(t, 9, logTime)}, ErrNoEquivocation, "no consistency path"},
		{"consistent, valid path", trust, &Evidence{First: ha, Second: a.head(t, 9, logTime), Path: a.path(t, 5, 9)}, ErrNoEquivocation, "is a prefix of the second"},
		{"first of the empty tree", trust, &Evidence{First: b.head(t, 0, logTime), Second: a.head(t, 9, logTime), Path: b.path(t, 1, 9)}, ErrNoEquivocation, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := c.e.Verify(c.trust)
			if k != "" {
				t.Errorf("kind %q with the error", k)
			}
			wantErr(t, err, c.sentinel, c.msg)
		})
	}
	if e := FindEquivocation(ha, of1000, nil); e != nil {
		t.Errorf("evidence %s of heads of two servers", e.Kind())
	}
	// Kind does not check signatures; Verify does.
	if fork.Kind() != EquivocationFork {
		t.Fatal("not a fork")
	}
}

// evidenceFileOf is the JSON of e's evidence file.
func evidenceFileOf(t testing.TB, e *Evidence) []byte {
	t.Helper()
	b, err := json.MarshalIndent(e.File(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestEvidenceFileStrict(t *testing.T) {
	trust := trustOf(t, witnessDir(t))
	a, b := newMemTree(t, "a", 0, 9), newMemTree(t, "b", 0, 9)
	fork := evidenceFileOf(t, &Evidence{First: a.head(t, 5, logTime), Second: b.head(t, 5, logTime)})
	inc := evidenceFileOf(t, &Evidence{First: a.head(t, 5, logTime), Second: b.head(t, 9, logTime), Path: b.path(t, 5, 9)})
	for _, f := range [][]byte{fork, inc} {
		ef, err := ParseEvidenceFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ef.Verify(trust); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Contains(fork, []byte(`"path": []`)) || !bytes.Contains(fork, []byte(`"format": "tsnode-evidence-v1"`)) || !bytes.Contains(fork, []byte(`"kind": "fork"`)) {
		t.Fatalf("fork file:\n%s", fork)
	}
	path0 := hexOf(b.path(t, 5, 9)[0])
	firstSig := mustJSONMember(t, fork, "first", "signature")
	parse, verify := "parse", "verify"
	for _, c := range []struct {
		name, stage string
		in          []byte
		msg         string
	}{
		{"unknown member", parse, addMember(fork, "  \"note\": \"x\",\n"), `unknown member "note"`},
		{"unknown member in first", parse, replaceOnce(t, fork, "\"first\": {\n", "\"first\": {\n    \"index\": 1,\n"), `unknown member "first.index"`},
		{"missing kind", parse, replaceOnce(t, fork, "  \"kind\": \"fork\",\n", ""), `member "kind" is missing`},
		{"missing format", parse, replaceOnce(t, fork, "  \"format\": \"tsnode-evidence-v1\",\n", ""), `member "format" is missing`},
		{"missing path", parse, replaceOnce(t, fork, ",\n  \"path\": []", ""), `member "path" is missing`},
		{"missing first.signature", parse, replaceOnce(t, fork, ",\n    \"signature\": \""+firstSig+"\"", ""), `member "first.signature" is missing`},
		{"path null", parse, replaceOnce(t, fork, `"path": []`, `"path": null`), `member "path" is null`},
		{"path of numbers", parse, replaceOnce(t, fork, `"path": []`, `"path": [1]`), `member path[0] is not a string`},
		{"repeated member", parse, replaceOnce(t, fork, `"kind": "fork",`, `"kind": "fork", "kind": "fork",`), `member "kind" appears twice`},
		{"member in capitals", parse, replaceOnce(t, fork, `"kind": "fork",`, `"Kind": "fork",`), `unknown member "Kind"`},
		{"trailing data", parse, append(bytes.Clone(fork), "{}"...), "trailing data after the JSON object"},
		{"a receipt", parse, docExample(t, "hello.txt.v2.receipt"), `unknown member "hash_algorithm"`},
		{"empty", parse, nil, "EOF"},
		{"too large", parse, append(bytes.Clone(fork), bytes.Repeat([]byte(" "), MaxReceiptSize)...), "maximum 65536"},
		{"kind mismatch", verify, replaceOnce(t, fork, `"kind": "fork"`, `"kind": "rollback"`), `member kind is "rollback", the heads prove "fork"`},
		{"kind empty", verify, replaceOnce(t, fork, `"kind": "fork"`, `"kind": ""`), `member kind is "", the heads prove "fork"`},
		{"kind of the inconsistent file", verify, replaceOnce(t, inc, `"kind": "inconsistent"`, `"kind": "fork"`), `the heads prove "inconsistent"`},
		{"unknown format", verify, replaceOnce(t, fork, `"format": "tsnode-evidence-v1"`, `"format": "tsnode-evidence-v2"`), `format "tsnode-evidence-v2", want "tsnode-evidence-v1"`},
		{"path hash in capitals", verify, replaceOnce(t, inc, path0, strings.ToUpper(path0)), "path[0] is not a 32-byte lowercase hex hash"},
		{"first.size of another head", verify, bytes.Replace(fork, []byte(`"size": 5,`), []byte(`"size": 6,`), 1), `field first.size ("6") does not match the signed tree head ("5")`},
		{"first.signature not base64", verify, replaceOnce(t, fork, firstSig, "!"+firstSig[1:]), "first.signature is not base64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ef, err := ParseEvidenceFile(c.in)
			if c.stage == verify {
				if err != nil {
					t.Fatalf("refused at parse: %v", err)
				}
				_, err = ef.Verify(trust)
			} else if ef != nil {
				t.Error("returned a file with the error")
			}
			wantErr(t, err, ErrMalformedEvidence, c.msg)
			if errors.Is(err, ErrMalformedReceipt) {
				t.Errorf("error %q wraps ErrMalformedReceipt", err)
			}
		})
	}
	// Verify refuses what does not prove anything, with the heads' error.
	same := evidenceFileOf(t, &Evidence{First: a.head(t, 5, logTime), Second: a.head(t, 5, logTime)})
	ef, err := ParseEvidenceFile(same)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ef.Verify(trust)
	wantErr(t, err, ErrNoEquivocation, "same root")

	p := filepath.Join(t.TempDir(), "evidence.json")
	if err := os.WriteFile(p, inc, 0o644); err != nil {
		t.Fatal(err)
	}
	ef, err = ReadEvidenceFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ef.Verify(trust); err != nil || k != EquivocationInconsistent {
		t.Fatalf("read file: %q, %v", k, err)
	}
	if _, err := ReadEvidenceFile(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing file reads")
	}
}

func hexOf(h tlog.Hash) string { return fmt.Sprintf("%x", h[:]) }

// mustJSONMember is the string member path of the JSON object b.
func mustJSONMember(t testing.TB, b []byte, path ...string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range path[:len(path)-1] {
		m = m[p].(map[string]any)
	}
	return m[path[len(path)-1]].(string)
}
