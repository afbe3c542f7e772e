package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// A receipt that two JSON parsers could read differently is refused, as
// are members of the other receipt format: each case names the member.
func TestParseReceiptRefusesAmbiguousMembers(t *testing.T) {
	v1, _ := sampleReceipt(t)
	good1 := v1.Marshal()
	f := newLogFixture(t)
	v2 := f.stamps[3].Receipt()
	good2 := v2.Marshal()
	for _, good := range [][]byte{good1, good2} {
		if _, err := ParseReceipt(good); err != nil {
			t.Fatalf("unaltered receipt: %v", err)
		}
	}
	insert := func(good []byte, after, member string) []byte {
		i := bytes.Index(good, []byte(after))
		if i < 0 {
			t.Fatalf("no %q in the receipt", after)
		}
		i += len(after)
		return append(append(bytes.Clone(good[:i]), member...), good[i:]...)
	}
	for _, tc := range []struct {
		name, want string
		in         []byte
	}{
		{"document_hash twice", `"document_hash" appears twice`, insert(good1, "{", `"document_hash": "00",`)},
		{"format twice", `"format" appears twice`, insert(good1, "{", `"format": "tsnode-receipt-v2",`)},
		{"name in another case", `unknown member "Document_Hash"`, insert(good1, "{", `"Document_Hash": "00",`)},
		{"tree_head member twice", `"tree_head.size" appears twice`, insert(good2, `"tree_head": {`, `"size": 1,`)},
		{"tree_head member in another case", `unknown member "tree_head.Size"`, insert(good2, `"tree_head": {`, `"Size": 1,`)},
		{"tree_head not an object", `"tree_head" is not an object`, bytes.Replace(good2, []byte(`"tree_head": {`), []byte(`"tree_head": [], "x": {`), 1)},
		{"v1 with a tree head", "has no tree_head", insert(good1, "{", `"tree_head": {"size": 1},`)},
		{"v1 with an inclusion proof", "has no inclusion_proof", insert(good1, "{", `"inclusion_proof": [],`)},
		{"v1 with a leaf", "has no leaf", insert(good1, "{", `"leaf": "AA==",`)},
		{"v2 with a signature", "has no signature", insert(good2, "{", `"signature": "AA==",`)},
		{"v2 with signed data", "has no signed_data", insert(good2, "{", `"signed_data": "AA==",`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseReceipt(tc.in)
			if err == nil {
				_, err = r.Verify(trustOf(t, f.dir), nil)
			}
			if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformedReceipt saying %s", err, tc.want)
			}
		})
	}
}

// editJSON returns the JSON object good with the member at path ("a" or
// "a.b") set to raw, or removed when raw is "".
func editJSON(t testing.TB, good []byte, path, raw string) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(good, &top); err != nil {
		t.Fatal(err)
	}
	set := func(m map[string]json.RawMessage, name string) {
		if raw == "" {
			if _, ok := m[name]; !ok {
				t.Fatalf("no member %q to remove", path)
			}
			delete(m, name)
		} else {
			m[name] = json.RawMessage(raw)
		}
	}
	parent, name, nested := strings.Cut(path, ".")
	if !nested {
		set(top, parent)
	} else {
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(top[parent], &sub); err != nil {
			t.Fatal(err)
		}
		set(sub, name)
		b, err := json.Marshal(sub)
		if err != nil {
			t.Fatal(err)
		}
		top[parent] = b
	}
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every member a receipt's format defines must be present, with its JSON
// type; null is refused (§10.1). Each refusal names the member.
func TestParseReceiptRequiresMembers(t *testing.T) {
	v1, _ := sampleReceipt(t)
	f := newLogFixture(t)
	v2 := f.stamps[3].Receipt()  // tree of size 6
	one := f.stamps[0].Receipt() // tree of size 1: no inclusion proof
	good1, good2, goodOne := v1.Marshal(), v2.Marshal(), one.Marshal()
	if bytes.Contains(goodOne, []byte("inclusion_proof")) || !bytes.Contains(good2, []byte("inclusion_proof")) {
		t.Fatal("the writer no longer leaves out only the empty inclusion proof")
	}
	for _, good := range [][]byte{good1, good2, goodOne, editJSON(t, goodOne, "inclusion_proof", "[]")} {
		r, err := ParseReceipt(good)
		if err == nil {
			_, err = r.Verify(trustOf(t, f.dir), nil)
		}
		if err != nil {
			t.Fatalf("valid receipt refused: %v\n%s", err, good)
		}
	}

	type tc struct {
		name, want string
		in         []byte
	}
	var cases []tc
	for _, m := range append(slices.Clone(receiptMembers), receiptV1Members...) {
		cases = append(cases,
			tc{"v1 without " + m, `member "` + m + `" is missing`, editJSON(t, good1, m, "")},
			tc{"v1 with " + m + " null", `member "` + m + `" is null`, editJSON(t, good1, m, "null")})
	}
	for _, m := range append(slices.Clone(receiptMembers), "leaf", "tree_head", "inclusion_proof") {
		cases = append(cases,
			tc{"v2 without " + m, `member "` + m + `" is missing`, editJSON(t, good2, m, "")},
			tc{"v2 with " + m + " null", `member "` + m + `" is null`, editJSON(t, good2, m, "null")})
	}
	for _, m := range treeHeadMembers {
		cases = append(cases,
			tc{"v2 without tree_head." + m, `member "tree_head.` + m + `" is missing`, editJSON(t, good2, "tree_head."+m, "")},
			tc{"v2 with tree_head." + m + " null", `member "tree_head.` + m + `" is null`, editJSON(t, good2, "tree_head."+m, "null")})
	}
	cases = append(cases,
		tc{"size 1 with inclusion_proof null", `member "inclusion_proof" is null`, editJSON(t, goodOne, "inclusion_proof", "null")},
		tc{"serial as a string", `member "serial" is not a number`, editJSON(t, good1, "serial", `"42"`)},
		tc{"serial negative", `member "serial" is not an integer`, editJSON(t, good1, "serial", `-1`)},
		tc{"serial a fraction", `member "serial" is not an integer`, editJSON(t, good1, "serial", `42.0`)},
		tc{"serial with an exponent", `member "serial" is not an integer`, editJSON(t, good1, "serial", `4.2e1`)},
		tc{"serial 2^64", `member "serial" is not an integer`, editJSON(t, good1, "serial", `18446744073709551616`)},
		tc{"tree_head.size as a string", `member "tree_head.size" is not a number`, editJSON(t, good2, "tree_head.size", `"6"`)},
		tc{"format a number", `member "format" is not a string`, editJSON(t, good1, "format", `1`)},
		tc{"nonce an array", `member "nonce" is not a string`, editJSON(t, good1, "nonce", `[]`)},
		tc{"tree_head.root_hash an object", `member "tree_head.root_hash" is not a string`, editJSON(t, good2, "tree_head.root_hash", `{}`)},
		tc{"inclusion_proof a string", `member "inclusion_proof" is not an array`, editJSON(t, good2, "inclusion_proof", `"00"`)},
		tc{"inclusion_proof with a null hash", `member inclusion_proof[1] is not a string`, editJSON(t, good2, "inclusion_proof", `["`+v2.InclusionProof[0]+`", null]`)},
		tc{"inclusion_proof with a number", `member inclusion_proof[0] is not a string`, editJSON(t, good2, "inclusion_proof", `[0]`)},
		tc{"tree_head a string", `member "tree_head" is not an object`, editJSON(t, good2, "tree_head", `"x"`)},
		// Members of the other format, even empty.
		tc{"v1 with an empty leaf", "has no leaf", editJSON(t, good1, "leaf", `""`)},
		tc{"v2 with an empty signature", "has no signature", editJSON(t, good2, "signature", `""`)},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseReceipt(c.in)
			if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformedReceipt saying %s", err, c.want)
			}
		})
	}

	// An unknown format is refused for its format, whatever it lacks.
	r, err := ParseReceipt([]byte(`{"format": "tsnode-receipt-v9"}`))
	if err == nil {
		_, err = r.Verify(trustOf(t, f.dir), nil)
	}
	if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), `format "tsnode-receipt-v9"`) {
		t.Fatalf("unknown format: %v", err)
	}
}

// u64 members are read exactly, beyond 2^53 where a float64 would round.
func TestParseReceiptKeepsU64Exact(t *testing.T) {
	v1, _ := sampleReceipt(t)
	for _, n := range []uint64{1<<53 + 1, 1<<64 - 1} {
		r, err := ParseReceipt(editJSON(t, v1.Marshal(), "serial", strconv.FormatUint(n, 10)))
		if err != nil || r.Serial != n {
			t.Fatalf("serial %d read as %v, %v", n, r, err)
		}
	}
}

// Every field of the JSON structs has a JSON kind, so none is refused
// as unknown by mistake.
func TestJSONShapesCoverFields(t *testing.T) {
	for _, c := range []struct {
		shape *jsonShape
		t     reflect.Type
	}{
		{receiptShape, reflect.TypeFor[Receipt]()},
		{treeHeadShape, reflect.TypeFor[ReceiptTreeHead]()},
		{consistencyShape, reflect.TypeFor[Consistency]()},
	} {
		if n := c.t.NumField(); len(c.shape.kinds) != n {
			t.Errorf("%s: %d fields, %d JSON kinds", c.t, n, len(c.shape.kinds))
		}
	}
}

// A consistency file must have all its members, each of its JSON type.
func TestParseConsistencyRequiresMembers(t *testing.T) {
	logs := newForkedLogs(t)
	good, err := json.Marshal(NewConsistency(logs.a3, logs.a5, treeProof(t, logs.a, 3, 5)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConsistency(good); err != nil {
		t.Fatalf("unaltered file: %v", err)
	}
	paths := []string{"format", "old", "new", "proof"}
	for _, m := range treeHeadMembers {
		paths = append(paths, "old."+m, "new."+m)
	}
	for _, p := range paths {
		for _, c := range []struct{ raw, want string }{{"", "is missing"}, {"null", "is null"}} {
			t.Run(p+" "+c.want, func(t *testing.T) {
				_, err := ParseConsistency(editJSON(t, good, p, c.raw))
				if want := `member "` + p + `" ` + c.want; !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v, want ErrMalformedReceipt saying %s", err, want)
				}
			})
		}
	}
	for _, c := range []struct{ path, raw, want string }{
		{"proof", `{}`, `member "proof" is not an array`},
		{"proof", `[null]`, `member proof[0] is not a string`},
		{"new.size", `-3`, `member "new.size" is not an integer`},
		{"old", `[]`, `member "old" is not an object`},
	} {
		if _, err := ParseConsistency(editJSON(t, good, c.path, c.raw)); !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %s: got %v, want ErrMalformedReceipt saying %s", c.path, c.raw, err, c.want)
		}
	}
	// An unknown format is refused for its format, whatever it lacks.
	c, err := ParseConsistency([]byte(`{"format": "tsnode-consistency-v9"}`))
	if err == nil {
		err = c.Verify(trustOf(t, testkeys.Directory(t, "server")))
	}
	if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), "not a "+ConsistencyFormat+" file") {
		t.Fatalf("unknown format: %v", err)
	}
}
