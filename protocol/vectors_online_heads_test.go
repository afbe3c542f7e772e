package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// The vectors of online_keys.json that check a signature: heads with
// their head signatures (CheckTreeHead) and v2 receipts whose head an
// online key signed (ParseReceipt). vectors_online_test.go makes the
// rest.

func genDelegatedHeads(t *testing.T, p *onlineVectorParts) []vector {
	b := &vectorBuilder{decoder: "CheckTreeHead"}
	key := testkeys.OnlineKey("server")
	withHead := func(h []byte) func(*vector) { return func(v *vector) { v.Head = hex.EncodeToString(h) } }
	sig := func(d []byte, signer identity.ID, online *ecdsa.PrivateKey, head []byte) []byte {
		return headSig(t, d, signer, online, head)
	}
	headFields := func(at time.Time, by string) map[string]string {
		h, err := ParseTreeHead(p.headAt(t, at))
		if err != nil {
			t.Fatal(err)
		}
		f := vecTreeHeadFields(h)
		f["signed_by"] = by
		return f
	}
	atNB, atNA := p.headAt(t, p.nb), p.headAt(t, p.na)
	b.ok("docs/example, online key", p.headSignature, headFields(p.headTime, "online key"), withHead(p.head))
	b.ok("docs/example v2, identity key", p.rsaSig, headFields(p.headTime, "identity key"), withHead(p.head))
	b.ok("head at not_before", sig(p.dele, "server", key, atNB), headFields(p.nb, "online key"), withHead(atNB))
	b.ok("head at not_after", sig(p.dele, "server", key, atNA), headFields(p.na, "online key"), withHead(atNA))
	month := p.window(p.nb, p.nb.Add(MaxDelegationWindow))
	b.ok("window of 31 days", sig(month, "server", key, p.head), headFields(p.headTime, "online key"), withHead(p.head))

	before, after := p.headAt(t, p.nb.Add(-1)), p.headAt(t, p.na.Add(1))
	other := func(id string, peerOf identity.ID) []byte {
		return p.record(func(f [][]byte) { f[0], f[1] = []byte(id), []byte(entry(t, peerOf).PeerID.String()) })
	}
	h1000 := func() []byte {
		h, err := ParseTreeHead(p.head)
		if err != nil {
			t.Fatal(err)
		}
		h.ServerID, h.ServerPeer = "1000", entry(t, "1000").PeerID
		return h.Encode()
	}()
	hOutsider := func() []byte {
		h, err := ParseTreeHead(p.head)
		if err != nil {
			t.Fatal(err)
		}
		h.ServerPeer = entry(t, "outsider").PeerID
		return h.Encode()
	}()
	const bs = "ErrBadSignature"
	for _, c := range []struct {
		name, sentinel, msg string
		head, sig           []byte
	}{
		{"head 1 ns before not_before", bs, "the tree head of size 7 is dated 2026-11-25T11:54:59.999999999Z, outside its window 2026-11-25T11:55:00.000000000Z to 2026-11-26T18:00:00.000000000Z",
			before, sig(p.dele, "server", key, before)},
		{"head 1 ns after not_after", bs, "is dated 2026-11-26T18:00:00.000000001Z, outside its window", after, sig(p.dele, "server", key, after)},
		{"window of 31 days and 1 ns", bs, "online key window of 744h0m0.000000001s is longer than 744h0m0s",
			p.head, sig(p.window(p.nb, p.nb.Add(MaxDelegationWindow+1)), "server", key, p.head)},
		{"delegation of another server id", bs, "its online key is delegated by 1000 (" + entry(t, "1000").PeerID.String() + ")",
			p.head, sig(other("1000", "1000"), "server", key, p.head)},
		{"delegation of another peer ID", bs, "its online key is delegated by server (" + entry(t, "outsider").PeerID.String() + ")",
			p.head, sig(other("server", "outsider"), "server", key, p.head)},
		{"delegation signed by another key", bs, "its delegation, for the tree head of size 7, does not verify with the key of server",
			p.head, sig(p.dele, "outsider", key, p.head)},
		{"delegation changed", bs, "its delegation, for the tree head of size 7, does not verify",
			p.head, EncodeRecord(HeadSignatureTag, nextDigit(p.dele, len(p.dele)-2), p.dsig, p.osig)},
		{"delegation of a P-384 key", bs, "online public key is an ECDSA key on P-384, want P-256", p.head, sig(p.set(3, p.p384), "server", key, p.head)},
		{"online signature changed", bs, "the tree head of size 7 does not verify with the online key " + (&Delegation{Key: &key.PublicKey}).Fingerprint() + " delegated by server",
			p.head, EncodeRecord(HeadSignatureTag, p.dele, p.dsig, flip(p.osig, 10))},
		{"online signature of another head", bs, "does not verify with the online key", atNB, p.headSignature},
		{"head signed by another online key", bs, "does not verify with the online key", p.head, sig(p.dele, "server", testkeys.OnlineKey("outsider"), p.head)},
		{"the online signature alone", bs, "head signature of 71 bytes is neither", p.head, p.osig},
		{"record cut", bs, "is neither an RSA-4096 signature nor a delegated signature", p.head, p.headSignature[:len(p.headSignature)-1]},
		{"the delegation's signature as the head's", bs, "the tree head of size 7 does not verify with the key of server", p.head, p.dsig},
		{"identity signature by another key", bs, "does not verify with the key of server", p.head, signAs(t, "outsider", p.head)},
		{"head of an untrusted server", "ErrUntrustedSigner", "1000 is not a trusted authority", h1000, sig(other("1000", "1000"), "1000", key, h1000)},
		{"head naming another key of server", "ErrWrongServerKey", "signed as server by peer " + entry(t, "outsider").PeerID.String(), hOutsider, p.headSignature},
		{"a delegation as the head", "ErrMalformed", `record type "tsnode-online-key-v1", want "tsnode-tree-head-v1"`, p.dele, p.headSignature},
	} {
		b.bad(c.name, c.sig, c.sentinel, c.msg, withHead(c.head))
	}
	return b.vectors
}

func genOnlineReceipts(t *testing.T, p *onlineVectorParts) []vector {
	b := &vectorBuilder{decoder: "ParseReceipt"}
	const name = "hello.txt.online.receipt"
	r := p.receipt
	f := vecStatementFields(exampleStatement(t, true))
	f["format"] = ReceiptFormatV2
	docHash := "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
	parse, verify := withStage("parse"), withStage("verify")
	const mr = "ErrMalformedReceipt"
	member := func(m, v string) string { return `"` + m + `": "` + v + `"` }
	d, dsig, osig := exampleReceiptMember(t, name, "tree_head", "delegation"), exampleReceiptMember(t, name, "tree_head", "delegation_signature"), exampleReceiptMember(t, name, "tree_head", "signature")
	rsa := exampleReceiptMember(t, "hello.txt.v2.receipt", "tree_head", "signature")
	drop := func(m, v string) []byte { return replaceOnce(t, r, ",\n    "+member(m, v), "") }

	b.ok("online docs/example", r, f)
	b.ok("online docs/example, for its document", r, f, withDocument(docHash))
	var compact bytes.Buffer
	if err := json.Compact(&compact, r); err != nil {
		t.Fatal(err)
	}
	b.ok("online compact JSON", compact.Bytes(), f)
	b.bad("online for another document", r, "ErrHashMismatch", "the receipt is for a948904f", withDocument(strings.Repeat("00", 32)), verify)

	b.bad("delegation without delegation_signature", drop("delegation_signature", dsig), mr, "tree_head has one of delegation and delegation_signature without the other", verify)
	b.bad("delegation_signature without delegation", drop("delegation", d), mr, "tree_head has one of delegation and delegation_signature without the other", verify)
	b.bad("empty delegation", replaceOnce(t, r, member("delegation", d), member("delegation", "")), mr, `member "tree_head.delegation" is empty`, parse)
	b.bad("empty delegation_signature", replaceOnce(t, r, member("delegation_signature", dsig), member("delegation_signature", "")), mr, `member "tree_head.delegation_signature" is empty`, parse)
	b.bad("delegation null", replaceOnce(t, r, member("delegation", d), `"delegation": null`), mr, `member "tree_head.delegation" is null`, parse)
	b.bad("unknown member in tree_head", replaceOnce(t, r, member("delegation", d), member("delegation", d)+`, "online_key": ""`), mr, `unknown member "tree_head.online_key"`, parse)
	b.bad("delegation outside tree_head", addMember(r, "  "+member("delegation", d)+",\n"), mr, `unknown member "delegation"`, parse)
	b.bad("a 512-byte signature next to a delegation", replaceOnce(t, r, member("signature", osig), member("signature", rsa)), mr,
		"tree_head.signature is an RSA-4096 signature's size, but it has a delegation", verify)
	whole := replaceOnce(t, drop("delegation", d), ",\n    "+member("delegation_signature", dsig), "")
	b.bad("the whole head signature in signature", replaceOnce(t, whole, member("signature", osig), member("signature", b64(p.headSignature))), mr,
		"tree_head.signature holds a delegation: write it in delegation and delegation_signature", verify)
	b.ok("delegation members dropped, the identity key's signature", replaceOnce(t, whole, member("signature", osig), member("signature", rsa)), f)
	b.bad("delegation with a line break", replaceOnce(t, r, member("delegation", d), member("delegation", d[:76]+`\n`+d[76:])), mr,
		"tree_head.delegation is not base64: line break at offset 76", verify)
	b.bad("delegation_signature without padding", replaceOnce(t, r, member("delegation_signature", dsig), member("delegation_signature", strings.TrimRight(dsig, "="))), mr,
		"tree_head.delegation_signature is not base64", verify)

	b.bad("delegation changed", replaceOnce(t, r, member("delegation", d), member("delegation", b64(nextDigit(p.dele, len(p.dele)-2)))), "ErrBadSignature",
		"its delegation, for the tree head of size 7, does not verify with the key of server", verify)
	b.bad("delegation_signature changed", replaceOnce(t, r, member("delegation_signature", dsig), member("delegation_signature", b64(flip(p.dsig, 100)))), "ErrBadSignature",
		"its delegation, for the tree head of size 7, does not verify", verify)
	b.bad("online signature changed", replaceOnce(t, r, member("signature", osig), member("signature", b64(flip(p.osig, 10)))), "ErrBadSignature",
		"the tree head of size 7 does not verify with the online key", verify)
	ended := p.window(p.nb.Add(-time.Hour), p.headTime.Add(-1))
	b.bad("delegation whose window ended before the head", replaceOnce(t, replaceOnce(t, r, member("delegation", d), member("delegation", b64(ended))),
		member("delegation_signature", dsig), member("delegation_signature", b64(signAs(t, "server", ended)))), "ErrBadSignature",
		"is dated 2026-11-25T12:00:01.300000000Z, outside its window 2026-11-25T10:55:00.000000000Z to 2026-11-25T12:00:01.299999999Z", verify)
	return b.vectors
}
