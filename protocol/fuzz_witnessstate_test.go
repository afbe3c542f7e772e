package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
)

// FuzzParseWitnessState: the witness's state file (PROTOCOL.md §13.3,
// tsnode-witness-state-v1) never panics the parser, errors wrap
// ErrMalformedReceipt and return nothing else, and what parses names a
// valid witness, at most one head per server, and re-marshals
// (MarshalWitnessState) to bytes that parse to the same witness and the
// same heads, and that marshal again to themselves.
func FuzzParseWitnessState(f *testing.F) {
	for _, s := range witnessStateSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, heads, err := ParseWitnessState(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedReceipt) || id != "" || heads != nil {
				t.Fatalf("ParseWitnessState: %q, %d heads, %v (want ErrMalformedReceipt and nothing else)", id, len(heads), err)
			}
			return
		}
		if _, err := identity.ParseID(string(id)); err != nil {
			t.Fatalf("parsed the witness id %q: %v", id, err)
		}
		seen := map[identity.ID]bool{}
		for _, h := range heads {
			if h == nil || h.Head == nil {
				t.Fatal("a nil head")
			}
			if seen[h.Head.ServerID] {
				t.Fatalf("two heads of %s", h.Head.ServerID)
			}
			seen[h.Head.ServerID] = true
		}
		re := MarshalWitnessState(id, heads)
		id2, heads2, err := ParseWitnessState(re)
		if err != nil {
			// The input may be compact JSON just under the size limit,
			// which the indented form exceeds: that alone is not a
			// failure of the round trip.
			if len(re) > MaxReceiptSize && len(b) <= MaxReceiptSize {
				return
			}
			t.Fatalf("a parsed state file, re-marshalled, does not parse: %v\n%s", err, re)
		}
		if id2 != id || len(heads2) != len(heads) {
			t.Fatalf("re-marshalled: witness %q with %d heads, want %q with %d", id2, len(heads2), id, len(heads))
		}
		for i := range heads {
			if !SameHead(heads[i], heads2[i]) || !bytes.Equal(heads[i].Encoded, heads2[i].Encoded) ||
				!bytes.Equal(heads[i].Signature, heads2[i].Signature) || *heads[i].Head != *heads2[i].Head {
				t.Fatalf("re-marshalled, head %d differs", i)
			}
		}
		if again := MarshalWitnessState(id2, heads2); !bytes.Equal(again, re) {
			t.Fatalf("re-marshalled twice, the state file differs:\n%s\n%s", re, again)
		}
	})
}

// witnessStateSeeds are a valid state file of the witness 3000 with the
// heads of two authorities (server and 1000, signed with their test
// keys), one with no head, and broken variants of the first.
func witnessStateSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	at := time.Date(2026, 11, 25, 12, 0, 1, 300000000, time.UTC)
	var root tlog.Hash
	copy(root[:], fill(HashSize, 0x40))
	srv := headAs(tb, "server", 7, root, at)
	other := headAs(tb, "1000", 1, tlog.Hash{1}, at.Add(time.Second))
	valid := MarshalWitnessState("3000", []*SignedTreeHead{other, srv}) // sorted: "1000" < "server"
	if _, heads, err := ParseWitnessState(valid); err != nil || len(heads) != 2 {
		tb.Fatalf("the valid seed: %d heads, %v", len(heads), err)
	}
	s := string(valid)
	rep := func(old, new string) []byte {
		if !strings.Contains(s, old) {
			tb.Fatalf("the valid seed has no %q", old)
		}
		return []byte(strings.Replace(s, old, new, 1))
	}
	srvJSON := string(MarshalWitnessState("3000", []*SignedTreeHead{srv}))
	srvObj := srvJSON[strings.Index(srvJSON, "[")+1 : strings.LastIndex(srvJSON, "]")]
	return [][]byte{
		valid,
		MarshalWitnessState("3000", nil),
		MarshalWitnessState("witness-7", []*SignedTreeHead{srv}),
		[]byte(`{"format":"tsnode-witness-state-v1","witness_id":"3000","cosigned":[]}`),
		rep(WitnessStateFormat, "tsnode-witness-state-v2"),
		rep(`"witness_id": "3000"`, `"witness_id": ""`),
		rep(`"witness_id": "3000"`, `"witness_id": "no spaces please"`),
		rep(`"witness_id": "3000",`, ""),
		rep(`"format"`, `"Format"`),
		rep(`"cosigned": [`, `"extra": 1, "cosigned": [`),
		rep(`"size": 7`, `"size": 8`),
		rep(`"size": 7`, `"size": "7"`),
		rep(`"root_hash": "`, `"root_hash": "00`),
		rep(`"signature": "`, `"signature": "!`),
		rep(`"signed_data": "`, `"signed_data": "AAAA`),
		rep(`"time": "2026-11-25T12:00:01.300000000Z"`, `"time": "2026-11-25T12:00:01.3Z"`),
		rep("]\n}", ","+srvObj+"]\n}"), // two heads of server
		rep(`"cosigned": [`, `"cosigned": null, "x": [`),
		append(bytes.Clone(valid), "{}"...),
		valid[:len(valid)/2],
		[]byte("null"),
		[]byte(`{"format":"tsnode-witness-state-v1","witness_id":"3000","cosigned":[null]}`),
	}
}

// TestWitnessStateSeeds: the seeds are what their names say; the valid
// ones parse, every broken one is refused.
func TestWitnessStateSeeds(t *testing.T) {
	seeds := witnessStateSeeds(t)
	for i, s := range seeds {
		_, _, err := ParseWitnessState(s)
		if valid := i < 4; valid != (err == nil) {
			t.Errorf("seed %d: %v\n%s", i, err, s)
		}
	}
}
