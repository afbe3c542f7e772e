package protocol

import (
	"bytes"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// roundTrip writes c as JSON and reads it back as tsnode verify does.
func roundTrip(t testing.TB, c *Consistency) *Consistency {
	t.Helper()
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseConsistency(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forkedLogs builds two logs signed by the same server key with a common
// prefix of 3 leaves, then different leaves: A has 5, B has 6.
type forkedLogs struct {
	a, b           *merklelog.Log
	a3, a5, b5, b6 *SignedTreeHead
}

func newForkedLogs(t testing.TB) *forkedLogs {
	t.Helper()
	f := &forkedLogs{a: openLog(t, t.TempDir()), b: openLog(t, t.TempDir())}
	sa, sb := newSigner(t, f.a, fixedClock(logTime)), newSigner(t, f.b, fixedClock(logTime))
	for i := range 3 {
		submit(t, sa, i)
		submit(t, sb, i)
	}
	if !SameHead(sa.Head(), sb.Head()) {
		t.Fatal("the common prefix differs")
	}
	f.a3 = sa.Head()
	submit(t, sa, 10)
	f.a5 = submit(t, sa, 11).Head
	submit(t, sb, 20)
	f.b5 = submit(t, sb, 21).Head
	f.b6 = submit(t, sb, 22).Head
	return f
}

func treeProof(t testing.TB, lg *merklelog.Log, old, nw uint64) tlog.TreeProof {
	t.Helper()
	p, err := lg.ConsistencyProof(old, nw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConsistencyVerify(t *testing.T) {
	f := newForkedLogs(t)
	dir := testkeys.Directory(t, "server", "1000", "outsider")
	outsider := entry(t, "outsider")
	resign := func(h *SignedTreeHead, id identity.ID, change func(*TreeHead)) *SignedTreeHead {
		c := *h.Head
		change(&c)
		enc := c.Encode()
		return &SignedTreeHead{Head: &c, Encoded: enc, Signature: signAs(t, id, enc)}
	}
	wrongDir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"server": outsider.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	trust, wrongTrust := trustOf(t, dir), trustOf(t, wrongDir)
	both := trustOf(t, dir, "server", "outsider")
	empty := resign(f.a3, "server", func(h *TreeHead) { h.Size = 0 })
	good := NewConsistency(f.a3, f.a5, treeProof(t, f.a, 3, 5))
	edit := func(change func(*Consistency)) *Consistency {
		c := roundTrip(t, good)
		change(c)
		return c
	}

	for _, c := range []struct {
		name  string
		c     *Consistency
		trust *Trust
		want  error
	}{
		{"A extends the common prefix", good, trust, nil},
		{"B extends the common prefix", NewConsistency(f.a3, f.b6, treeProof(t, f.b, 3, 6)), trust, nil},
		{"a head and itself", NewConsistency(f.b6, f.b6, nil), trust, nil},
		{"a head and itself with a proof", NewConsistency(f.a5, f.a5, treeProof(t, f.a, 3, 5)), trust, ErrInconsistent},
		{"forked: two trees of the same size", NewConsistency(f.a5, f.b5, nil), trust, ErrInconsistent},
		{"forked: B's proof from A's head", NewConsistency(f.a5, f.b6, treeProof(t, f.b, 5, 6)), trust, ErrInconsistent},
		{"forked: A's proof to B's head", NewConsistency(f.a3, f.b5, treeProof(t, f.a, 3, 5)), trust, ErrInconsistent},
		{"heads in the wrong order", NewConsistency(f.a5, f.a3, treeProof(t, f.a, 3, 5)), trust, ErrInconsistent},
		{"proof hash dropped", edit(func(c *Consistency) { c.Proof = c.Proof[1:] }), trust, ErrInconsistent},
		{"proof hash added", edit(func(c *Consistency) { c.Proof = append(c.Proof, c.Proof[0]) }), trust, ErrInconsistent},
		{"proof empty", edit(func(c *Consistency) { c.Proof = []string{} }), trust, ErrInconsistent},
		{"proof null", edit(func(c *Consistency) { c.Proof = nil }), trust, ErrMalformedReceipt},
		{"proof not hex", edit(func(c *Consistency) { c.Proof[0] = "x" + c.Proof[0][1:] }), trust, ErrMalformedReceipt},
		{"new head signed by the wrong key", NewConsistency(f.a3, resign(f.a5, "outsider", func(*TreeHead) {}), treeProof(t, f.a, 3, 5)), trust, ErrBadSignature},
		{"old head signed by the wrong key", NewConsistency(resign(f.a3, "outsider", func(*TreeHead) {}), f.a5, treeProof(t, f.a, 3, 5)), trust, ErrBadSignature},
		{"new head of an untrusted server", NewConsistency(f.a3, resign(f.a5, "outsider", func(h *TreeHead) { h.ServerID, h.ServerPeer = outsider.ID, outsider.PeerID }), treeProof(t, f.a, 3, 5)), trust, ErrUntrustedSigner},
		{"new head of another trusted server", NewConsistency(f.a3, resign(f.a5, "outsider", func(h *TreeHead) { h.ServerID, h.ServerPeer = outsider.ID, outsider.PeerID }), treeProof(t, f.a, 3, 5)), both, ErrDifferentServers},
		{"old head later than the new one", NewConsistency(resign(f.a3, "server", func(h *TreeHead) { h.Time = f.a5.Head.Time.Add(time.Second) }), f.a5, treeProof(t, f.a, 3, 5)), trust, ErrInconsistent},
		{"two heads of the empty tree", NewConsistency(empty, empty, nil), trust, ErrInconsistent},
		{"head naming another peer", NewConsistency(f.a3, resign(f.a5, "outsider", func(h *TreeHead) { h.ServerPeer = outsider.PeerID }), treeProof(t, f.a, 3, 5)), trust, ErrWrongServerKey},
		{"only another authority trusted", good, trustOf(t, dir, "1000"), ErrUntrustedSigner},
		{"another key trusted for the server", good, wrongTrust, ErrWrongServerKey},
		{"readable size altered", edit(func(c *Consistency) { c.New.Size++ }), trust, ErrMalformedReceipt},
		{"readable root altered", edit(func(c *Consistency) { c.Old.RootHash = strings.Repeat("0", 64) }), trust, ErrMalformedReceipt},
		{"wrong format", edit(func(c *Consistency) { c.Format = ReceiptFormatV2 }), trust, ErrMalformedReceipt},
		{"old head missing", edit(func(c *Consistency) { c.Old = nil }), trust, ErrMalformedReceipt},
		{"signature missing", edit(func(c *Consistency) { c.New.Signature = "" }), trust, ErrMalformedReceipt},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Through JSON: a member written as null is refused by
			// ParseConsistency.
			b, err := json.Marshal(c.c)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseConsistency(b)
			if err == nil {
				err = parsed.Verify(c.trust)
			}
			if c.want == nil && err != nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}

	// Every byte of every proof hash matters.
	for j, h := range good.Proof {
		raw, _ := hex.DecodeString(h)
		for k := range raw {
			c := roundTrip(t, good)
			c.Proof[j] = hex.EncodeToString(flip(raw, k))
			if err := c.Verify(trustOf(t, dir)); !errors.Is(err, ErrInconsistent) {
				t.Fatalf("proof hash %d byte %d altered: %v", j, k, err)
			}
		}
	}
	// And every byte of the signed heads.
	for i := range f.a5.Encoded {
		c := roundTrip(t, good)
		c.New.SignedData = b64(flip(f.a5.Encoded, i))
		if err := c.Verify(trustOf(t, dir)); err == nil {
			t.Fatalf("new head byte %d altered: verified", i)
		}
	}
}

// A consistency file is parsed as strictly as a receipt; each refusal
// names what is wrong.
func TestParseConsistencyRefuses(t *testing.T) {
	f := newForkedLogs(t)
	good, err := json.MarshalIndent(NewConsistency(f.a3, f.a5, treeProof(t, f.a, 3, 5)), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConsistency(good); err != nil {
		t.Fatalf("unaltered file: %v", err)
	}
	replace := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("no %q in the file", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	for _, tc := range []struct {
		name, want string
		in         []byte
	}{
		{"proof renamed", `unknown member "proo0"`, replace(`"proof"`, `"proo0"`)},
		{"proof twice", `"proof" appears twice`, replace(`"proof"`, `"proof": [], "proof"`)},
		{"name in another case", `unknown member "Proof"`, replace(`"proof"`, `"Proof"`)},
		{"head member twice", `"new.size" appears twice`, replace(`"new": {`, `"new": {"size": 9,`)},
		{"head not an object", `"old" is not an object`, replace(`"old": {`, `"old": "x", "x": {`)},
		{"trailing data", "trailing data", append(bytes.Clone(good), "{}"...)},
		{"not an object", "not a JSON object", []byte("[]")},
		{"over 64 KiB", "maximum", append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxReceiptSize)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConsistency(tc.in)
			if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformedReceipt saying %s", err, tc.want)
			}
		})
	}
}
