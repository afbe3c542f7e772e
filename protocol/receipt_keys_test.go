package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
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
