package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Receipts and consistency files whose heads an online key signed
// (§5.6, §10.1): they verify as before, carry the head signature in
// three members of tree_head, and refuse every other way of writing it.

// delegatedOf is sth signed again, by the online key k.
func delegatedOf(t testing.TB, k *OnlineKey, sth *SignedTreeHead) *SignedTreeHead {
	t.Helper()
	sig, err := k.SignHead(sth.Encoded, sth.Head.Time)
	if err != nil {
		t.Fatal(err)
	}
	return &SignedTreeHead{Head: sth.Head, Encoded: sth.Encoded, Signature: sig}
}

// logOnlineKey delegates the test online key of server over the hour
// either side of logTime, when the log fixture's heads are dated.
func logOnlineKey(t testing.TB) *OnlineKey {
	return delegateAs(t, onlinePriv("server"), entry(t, "server"), "server", logTime.Add(-time.Hour), logTime.Add(time.Hour))
}

func TestDelegatedReceipt(t *testing.T) {
	f := newLogFixture(t)
	k := logOnlineKey(t)
	head := delegatedOf(t, k, f.signer.Head())
	hs, err := ParseHeadSignature(head.Signature)
	if err != nil {
		t.Fatal(err)
	}
	trust := trustOf(t, f.dir)
	cache := NewHeadCache(16)
	for i := range f.stamps {
		b := f.receiptIn(t, i, head).Marshal()
		r, err := ParseReceipt(b)
		if err != nil {
			t.Fatalf("stamp %d: %v", i, err)
		}
		th := r.TreeHead
		if th.Signature != b64(hs.Signature) || th.Delegation != b64(k.Encoded()) || th.DelegationSignature != b64(hs.DelegationSignature) {
			t.Fatalf("stamp %d: tree_head is not written in its parts: %+v", i, th)
		}
		for _, c := range []*HeadCache{nil, cache} {
			st, err := r.VerifyCached(trust, docHash(i), c)
			if err != nil || st.Serial != uint64(i) {
				t.Fatalf("stamp %d: %+v, %v", i, st, err)
			}
		}
		if _, err := r.Verify(trust, docHash(i+1)); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("stamp %d, another document: %v", i, err)
		}
		if again := r.Marshal(); !bytes.Equal(again, b) {
			t.Fatalf("stamp %d: read and written again, the receipt changed:\n%s\n%s", i, b, again)
		}
		sth, err := r.TreeHeadOf()
		if err != nil || !SameHead(sth, head) {
			t.Fatalf("stamp %d: TreeHeadOf gives another head (%v)", i, err)
		}
	}
	// One verification of the head, one of its delegation: seven
	// receipts later the cache did no more.
	if n := cache.verified.Load(); n != 2 {
		t.Fatalf("%d verifications for 7 receipts under one delegated head, want 2", n)
	}
	// An identity-signed head's receipt has neither member.
	if b := f.stamps[6].Receipt().Marshal(); bytes.Contains(b, []byte(`"delegation`)) {
		t.Fatalf("a receipt of an RSA-signed head names a delegation:\n%s", b)
	}
}

func TestDelegatedConsistency(t *testing.T) {
	f := newLogFixture(t)
	k := logOnlineKey(t)
	trust := trustOf(t, f.dir)
	rsaOld, rsaNew := f.stamps[0].Head, f.signer.Head()
	old, nw := delegatedOf(t, k, rsaOld), delegatedOf(t, k, rsaNew)
	proof := treeProof(t, f.lg, old.Head.Size, nw.Head.Size)
	for _, c := range []struct {
		name    string
		old, nw *SignedTreeHead
	}{{"both delegated", old, nw}, {"old by the identity key", rsaOld, nw}, {"new by the identity key", old, rsaNew}} {
		if err := roundTrip(t, NewConsistency(c.old, c.nw, proof)).Verify(trust); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	hs, err := ParseHeadSignature(nw.Signature)
	if err != nil {
		t.Fatal(err)
	}
	bad := *nw
	bad.Signature = (&HeadSignature{Delegation: hs.Delegation, DelegationSignature: hs.DelegationSignature, Signature: flip(hs.Signature, 12)}).Encode()
	if err := roundTrip(t, NewConsistency(old, &bad, proof)).Verify(trust); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "new head: ") {
		t.Fatalf("new head's online signature changed: %v", err)
	}
	c := NewConsistency(old, nw, proof)
	c.Old.DelegationSignature = ""
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseConsistency(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Verify(trust); !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), "old has one of delegation and delegation_signature without the other") {
		t.Fatalf("old head with a delegation and no delegation_signature: %v", err)
	}
}

// The JSON of a delegated head has one spelling: the three members, each
// non-empty base64, the delegation's two together; anything else is a
// malformed receipt. Bytes changed in any of them are a bad signature.
func TestDelegatedReceiptRefused(t *testing.T) {
	f := newLogFixture(t)
	k := logOnlineKey(t)
	head := delegatedOf(t, k, f.signer.Head())
	hs, err := ParseHeadSignature(head.Signature)
	if err != nil {
		t.Fatal(err)
	}
	good := f.receiptIn(t, 2, head)
	edit := func(e func(th *ReceiptTreeHead)) []byte {
		r := cloneReceipt(good)
		e(r.TreeHead)
		return r.Marshal()
	}
	text := good.Marshal()
	member := func(name, value string) string { return `"` + name + `": "` + value + `"` }
	d, dsig, sig := b64(hs.Delegation), b64(hs.DelegationSignature), b64(hs.Signature)
	rsaText := f.stamps[2].Receipt().Marshal()
	rsaSig := b64(f.stamps[2].Head.Signature)
	for _, c := range []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"delegation without delegation_signature", edit(func(th *ReceiptTreeHead) { th.DelegationSignature = "" }), ErrMalformedReceipt,
			"tree_head has one of delegation and delegation_signature without the other"},
		{"delegation_signature without delegation", edit(func(th *ReceiptTreeHead) { th.Delegation = "" }), ErrMalformedReceipt,
			"tree_head has one of delegation and delegation_signature without the other"},
		{"a 512-byte signature next to a delegation", edit(func(th *ReceiptTreeHead) { th.Signature = b64(signAs(t, "server", head.Encoded)) }), ErrMalformedReceipt,
			"tree_head.signature is an RSA-4096 signature's size, but it has a delegation"},
		{"the whole record in signature", edit(func(th *ReceiptTreeHead) {
			th.Signature, th.Delegation, th.DelegationSignature = b64(head.Signature), "", ""
		}), ErrMalformedReceipt,
			"tree_head.signature holds a delegation: write it in delegation and delegation_signature"},
		{"the whole record in signature, with the delegation", edit(func(th *ReceiptTreeHead) { th.Signature = b64(head.Signature) }), ErrBadSignature, "is not a DER ECDSA signature"},
		{"empty delegation", replaceOnce(t, text, member("delegation", d), member("delegation", "")), ErrMalformedReceipt, `member "tree_head.delegation" is empty`},
		{"empty delegation_signature next to an RSA signature", replaceOnce(t, rsaText, member("signature", rsaSig), member("signature", rsaSig)+`, "delegation_signature": ""`), ErrMalformedReceipt,
			`member "tree_head.delegation_signature" is empty`},
		{"both empty next to an RSA signature", replaceOnce(t, rsaText, member("signature", rsaSig), member("signature", rsaSig)+`, "delegation": "", "delegation_signature": ""`), ErrMalformedReceipt,
			`member "tree_head.delegation" is empty`},
		{"delegation null", replaceOnce(t, text, member("delegation", d), `"delegation": null`), ErrMalformedReceipt, `member "tree_head.delegation" is null`},
		{"delegation a number", replaceOnce(t, text, member("delegation", d), `"delegation": 1`), ErrMalformedReceipt, `member "tree_head.delegation" is not a string`},
		{"delegation twice", replaceOnce(t, text, member("delegation", d), member("delegation", d)+", "+member("delegation", d)), ErrMalformedReceipt, `member "tree_head.delegation" appears twice`},
		{"delegation in capitals", replaceOnce(t, text, member("delegation", d), member("Delegation", d)), ErrMalformedReceipt, `unknown member "tree_head.Delegation"`},
		{"unknown member", replaceOnce(t, text, member("delegation", d), member("delegation", d)+`, "online_key": "x"`), ErrMalformedReceipt, `unknown member "tree_head.online_key"`},
		{"delegation outside tree_head", addMember(text, "  "+member("delegation", d)+",\n"), ErrMalformedReceipt, `unknown member "delegation"`},
		{"delegation with a line break", replaceOnce(t, text, member("delegation", d), member("delegation", d[:40]+`\n`+d[40:])), ErrMalformedReceipt,
			"tree_head.delegation is not base64: line break at offset 40"},
		{"delegation_signature not base64", replaceOnce(t, text, member("delegation_signature", dsig), member("delegation_signature", "!"+dsig[1:])), ErrMalformedReceipt,
			"tree_head.delegation_signature is not base64"},
		{"delegation changed", edit(func(th *ReceiptTreeHead) { th.Delegation = b64(nextDigit(hs.Delegation, len(hs.Delegation)-2)) }), ErrBadSignature,
			"its delegation, for the tree head of size 7, does not verify with the key of server"},
		{"delegation_signature changed", edit(func(th *ReceiptTreeHead) { th.DelegationSignature = b64(flip(hs.DelegationSignature, 100)) }), ErrBadSignature,
			"its delegation, for the tree head of size 7, does not verify"},
		{"online signature changed", edit(func(th *ReceiptTreeHead) { th.Signature = b64(flip(hs.Signature, 8)) }), ErrBadSignature,
			"the tree head of size 7 does not verify with the online key"},
		{"online signature of another head", edit(func(th *ReceiptTreeHead) {
			th.Signature = b64(onlineSign(t, onlinePriv("server"), f.stamps[0].Head.Encoded))
		}), ErrBadSignature, "does not verify with the online key"},
		{"RSA signature replaced by the online one", replaceOnce(t, rsaText, member("signature", rsaSig), member("signature", sig)), ErrBadSignature,
			"head signature of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			r, perr := ParseReceipt(c.in)
			if err = perr; err == nil {
				_, err = r.Verify(trustOf(t, f.dir), nil)
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.msg)
			}
		})
	}
}

// nextDigit returns a copy of b with the ASCII digit at i changed to
// another digit: a time that still parses, but is another time.
func nextDigit(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1 // '0' <-> '1', ..., '8' <-> '9'
	return c
}
