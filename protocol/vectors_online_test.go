package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The vectors of online keys (PROTOCOL.md §5.6), in
// testdata/vectors/online_keys.json: delegations, head signatures, heads
// checked with their signature, and v2 receipts whose head an online key
// signed. The online key is testkeys.OnlineKey("server") and its
// signatures are deterministic (RFC 6979), so regenerating writes the
// same bytes.
//
//	go test ./protocol -run TestOnlineVectorsFresh -update-online-vectors
//
// (-update-vectors regenerates every file, online_keys.json among them.)
var updateOnlineVectors = flag.Bool("update-online-vectors", false, "regenerate protocol/testdata/vectors/online_keys.json")

func TestOnlineVectorsFresh(t *testing.T) {
	if *updateOnlineVectors {
		writeVectorFile(t, "online_keys.json", genOnlineKeys(t))
	}
	if loadVectors(t)["online_keys.json"] == nil {
		t.Fatal("vector file online_keys.json is missing")
	}
}

func init() {
	vectorSentinels["ErrBadDelegation"] = ErrBadDelegation
	vectorDecoders["ParseDelegation"] = func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		d, err := ParseDelegation(in)
		if err != nil {
			return nil, err
		}
		if re, err := d.Encode(); err != nil || !bytes.Equal(re, in) {
			tb.Errorf("re-encodes to %x (%v)", re, err)
		}
		return vecDelegationFields(tb, d), nil
	}
	vectorDecoders["ParseHeadSignature"] = func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		s, err := ParseHeadSignature(in)
		if err != nil {
			return nil, err
		}
		if re := s.Encode(); !bytes.Equal(re, in) {
			tb.Errorf("re-encodes to %x", re)
		}
		if s.Delegation == nil {
			return fmtFields("kind", "identity", "signature", hex.EncodeToString(s.Signature)), nil
		}
		return fmtFields("kind", "delegated", "delegation", hex.EncodeToString(s.Delegation),
			"delegation_signature", hex.EncodeToString(s.DelegationSignature), "signature", hex.EncodeToString(s.Signature)), nil
	}
	vectorDecoders["CheckTreeHead"] = func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		head, err := hex.DecodeString(v.Head)
		if err != nil {
			tb.Fatalf("head is not hex: %v", err)
		}
		trust := vectorTrust(tb)
		sth, err := trust.CheckTreeHead(head, in, nil)
		if _, err2 := trust.CheckTreeHead(head, in, NewHeadCache(4)); !sameError(err, err2) {
			tb.Errorf("without a cache: %v; with one: %v", err, err2)
		}
		if err != nil {
			return nil, err
		}
		f := vecTreeHeadFields(sth.Head)
		f["signed_by"] = "identity key"
		if len(in) != identitySignatureSize {
			f["signed_by"] = "online key"
		}
		return f, nil
	}
}

func vecDelegationFields(tb testing.TB, d *Delegation) map[string]string {
	spki, err := x509.MarshalPKIXPublicKey(d.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return fmtFields("server_id", string(d.ServerID), "server_peer_id", d.ServerPeer.String(), "public_key", hex.EncodeToString(spki),
		"not_before", FormatTime(d.NotBefore), "not_after", FormatTime(d.NotAfter))
}

// onlineVectorParts are the parts of docs/example/hello.txt.online.receipt
// the vectors are made from.
type onlineVectorParts struct {
	receipt           []byte
	head              []byte // the tree head's bytes
	dele, dsig, osig  []byte
	fields            [][]byte // the delegation's fields after the tag
	nb, na, headTime  time.Time
	rsaSig            []byte // the identity key's signature of the same head (hello.txt.v2.receipt)
	delegationFields  map[string]string
	headSignature     []byte // the record
	spki, p384, rsaPK []byte // SubjectPublicKeyInfos
}

func onlineParts(t *testing.T) *onlineVectorParts {
	const name = "hello.txt.online.receipt"
	p := &onlineVectorParts{
		receipt: docExample(t, name),
		head:    vecUnb64(t, exampleReceiptMember(t, name, "tree_head", "signed_data")),
		dele:    vecUnb64(t, exampleReceiptMember(t, name, "tree_head", "delegation")),
		dsig:    vecUnb64(t, exampleReceiptMember(t, name, "tree_head", "delegation_signature")),
		osig:    vecUnb64(t, exampleReceiptMember(t, name, "tree_head", "signature")),
		rsaSig:  vecUnb64(t, exampleReceiptMember(t, "hello.txt.v2.receipt", "tree_head", "signature")),
	}
	d, err := ParseDelegation(p.dele)
	if err != nil {
		t.Fatal(err)
	}
	if p.fields, err = DecodeRecord(p.dele, OnlineKeyTag, 6); err != nil {
		t.Fatal(err)
	}
	h, err := ParseTreeHead(p.head)
	if err != nil {
		t.Fatal(err)
	}
	p.nb, p.na, p.headTime = d.NotBefore, d.NotAfter, h.Time
	p.delegationFields = vecDelegationFields(t, d)
	p.headSignature = (&HeadSignature{Delegation: p.dele, DelegationSignature: p.dsig, Signature: p.osig}).Encode()
	p.spki = p.fields[3]
	// A fixed P-384 key, so that the vectors are reproducible.
	seed := sha512.Sum512([]byte("tsnode vectors P-384 key"))
	k384, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), seed[:48])
	if err != nil {
		t.Fatal(err)
	}
	if p.p384, err = x509.MarshalPKIXPublicKey(&k384.PublicKey); err != nil {
		t.Fatal(err)
	}
	if p.rsaPK, err = x509.MarshalPKIXPublicKey(entry(t, "server").PublicKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// record is the example's delegation with its fields after the tag as
// edit leaves them.
func (p *onlineVectorParts) record(edit func(f [][]byte)) []byte {
	f := make([][]byte, len(p.fields))
	copy(f, p.fields)
	if edit != nil {
		edit(f)
	}
	return EncodeRecord(OnlineKeyTag, f...)
}

func (p *onlineVectorParts) set(i int, v []byte) []byte {
	return p.record(func(f [][]byte) { f[i] = v })
}

// window is the example's delegation for [nb, na].
func (p *onlineVectorParts) window(nb, na time.Time) []byte {
	return p.record(func(f [][]byte) { f[4], f[5] = []byte(FormatTime(nb)), []byte(FormatTime(na)) })
}

// headAt is the example's tree head dated at.
func (p *onlineVectorParts) headAt(t *testing.T, at time.Time) []byte {
	h, err := ParseTreeHead(p.head)
	if err != nil {
		t.Fatal(err)
	}
	h.Time = at
	return h.Encode()
}

func genOnlineKeys(t *testing.T) *vectorFile {
	p := onlineParts(t)
	var all []vector
	all = append(all, genDelegations(t, p)...)
	all = append(all, genHeadSignatures(t, p)...)
	all = append(all, genDelegatedHeads(t, p)...)
	all = append(all, genOnlineReceipts(t, p)...)
	return &vectorFile{Description: "Online keys (PROTOCOL.md §5.6), from docs/example/hello.txt.online.receipt and the TEST-ONLY online key testkeys.OnlineKey(\"server\"): " +
		"ParseDelegation (accepted inputs re-encode to the input); ParseHeadSignature, which splits a head signature without checking it (kind identity: 512 bytes; delegated: the record, its fields hex); " +
		"CheckTreeHead of the tree head head (hex) with the input as its signature, trusting the authority \"server\" with the internal/testkeys keys; " +
		"and ParseReceipt, then Receipt.Verify, of v2 receipts whose head an online key signed (stage: which call refuses).", Vectors: all}
}

func genDelegations(t *testing.T, p *onlineVectorParts) []vector {
	b := &vectorBuilder{decoder: "ParseDelegation"}
	b.ok("docs/example", p.dele, p.delegationFields)
	instant := p.window(p.headTime, p.headTime)
	b.ok("window of one instant", instant, withFields(p.delegationFields, "not_before", FormatTime(p.headTime), "not_after", FormatTime(p.headTime)))
	month := p.window(p.nb, p.nb.Add(MaxDelegationWindow))
	b.ok("window of 31 days", month, withFields(p.delegationFields, "not_after", FormatTime(p.nb.Add(MaxDelegationWindow))))
	point := mustPoint(t, p.spki)
	compressed := append(mustHex(t, "3039301306072a8648ce3d020106082a8648ce3d030107032200"), append([]byte{2 + point[64]&1}, point[1:33]...)...)
	cid := []byte(peer.ToCid(entry(t, "server").PeerID).String())
	for _, c := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"tree head tag", EncodeRecord(TreeHeadTag, p.fields...), `record type "tsnode-tree-head-v1", want "tsnode-online-key-v1"`},
		{"5 fields", EncodeRecord(OnlineKeyTag, p.fields[:5]...), "tsnode-online-key-v1: 5 fields, want 6"},
		{"7 fields", append(bytes.Clone(p.dele), 0, 0, 0, 0), "tsnode-online-key-v1: 7 fields, want 6"},
		{"trailing byte", append(bytes.Clone(p.dele), 0), "truncated field length"},
		{"last byte cut", p.dele[:len(p.dele)-1], "field 6 claims 30 bytes, 29 left"},
		{"empty server id", p.set(0, nil), "online key server: invalid id"},
		{"server id with a slash", p.set(0, []byte("a/b")), "online key server: invalid id"},
		{"server peer ID as CIDv1", p.set(1, cid), "online key server peer ID: invalid peer ID"},
		{"algorithm in capitals", p.set(2, []byte("ECDSA-P256-SHA256")), `online key algorithm "ECDSA-P256-SHA256", want "ecdsa-p256-sha256"`},
		{"algorithm ecdsa-p384-sha384", p.set(2, []byte("ecdsa-p384-sha384")), `online key algorithm "ecdsa-p384-sha384", want "ecdsa-p256-sha256"`},
		{"P-384 key", p.set(3, p.p384), "online public key is an ECDSA key on P-384, want P-256"},
		{"RSA key", p.set(3, p.rsaPK), "online public key is a *rsa.PublicKey, want ECDSA P-256"},
		{"compressed point", p.set(3, compressed), "online public key: "},
		{"point off the curve", p.set(3, flip(p.spki, 60)), "online public key: "},
		{"key with a trailing byte", p.set(3, append(bytes.Clone(p.spki), 0)), "online public key: "},
		{"raw point instead of SubjectPublicKeyInfo", p.set(3, point), "online public key: "},
		{"empty key", p.set(3, nil), "online public key: "},
		{"not_before with three digits", p.set(4, []byte("2026-11-25T11:55:00.000Z")), "online key not_before: malformed message"},
		{"not_after with an offset", p.set(5, []byte("2026-11-26T18:00:00.000000000+00:00")), "online key not_after: malformed message"},
		{"window that ends before it starts", p.window(p.na, p.nb), "online key window ends (2026-11-25T11:55:00.000000000Z) before it starts (2026-11-26T18:00:00.000000000Z)"},
		{"window of 31 days and 1 ns", p.window(p.nb, p.nb.Add(MaxDelegationWindow+1)), "online key window of 744h0m0.000000001s is longer than 744h0m0s"},
		{"window of 100 years", p.window(p.nb, p.nb.AddDate(100, 0, 0)), "is longer than 744h0m0s"},
		{"empty", nil, "empty record"},
	} {
		b.bad(c.name, c.in, "ErrMalformed", c.msg)
	}
	return b.vectors
}

// withFields is a copy of f with the given keys set.
func withFields(f map[string]string, kv ...string) map[string]string {
	c := make(map[string]string, len(f))
	for k, v := range f {
		c[k] = v
	}
	for k, v := range fmtFields(kv...) {
		c[k] = v
	}
	return c
}

// mustPoint returns the uncompressed point of a P-256 SubjectPublicKeyInfo.
func mustPoint(t *testing.T, spki []byte) []byte {
	k, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatal(err)
	}
	point, err := k.(*ecdsa.PublicKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return point
}

func genHeadSignatures(t *testing.T, p *onlineVectorParts) []vector {
	b := &vectorBuilder{decoder: "ParseHeadSignature"}
	hx := hex.EncodeToString
	b.ok("docs/example, delegated", p.headSignature, fmtFields("kind", "delegated", "delegation", hx(p.dele), "delegation_signature", hx(p.dsig), "signature", hx(p.osig)))
	b.ok("docs/example v2, the identity key's", p.rsaSig, fmtFields("kind", "identity", "signature", hx(p.rsaSig)))
	b.ok("any 512 bytes are the identity key's", fill(512, 0), fmtFields("kind", "identity", "signature", hx(fill(512, 0))))
	odd := EncodeRecord(HeadSignatureTag, []byte("d"), []byte("s"), []byte("o"))
	b.ok("a record, not yet checked", odd, fmtFields("kind", "delegated", "delegation", "64", "delegation_signature", "73", "signature", "6f"))
	rec := func(f ...[]byte) []byte { return EncodeRecord(HeadSignatureTag, f...) }
	for _, c := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "head signature of 0 bytes is neither an RSA-4096 signature nor a delegated signature"},
		{"511 bytes", p.rsaSig[:511], "head signature of 511 bytes is neither"},
		{"513 bytes", append(bytes.Clone(p.rsaSig), 0), "head signature of 513 bytes is neither"},
		{"the online signature alone", p.osig, "is neither an RSA-4096 signature nor a delegated signature"},
		{"another tag", EncodeRecord("tsnode-head-signature-v1", p.dele, p.dsig, p.osig), `record type "tsnode-head-signature-v1", want "tsnode-head-signature-v2"`},
		{"2 fields", rec(p.dele, p.osig), "2 fields, want 3"},
		{"4 fields", rec(p.dele, p.dsig, p.osig, nil), "4 fields, want 3"},
		{"trailing byte", append(bytes.Clone(p.headSignature), 0), "truncated field length"},
		{"last byte cut", p.headSignature[:len(p.headSignature)-1], "claims 71 bytes, 70 left"},
		{"empty delegation", rec(nil, p.dsig, p.osig), "head signature: empty delegation"},
		{"empty delegation signature", rec(p.dele, nil, p.osig), "head signature: empty delegation signature"},
		{"empty online signature", rec(p.dele, p.dsig, nil), "head signature: empty online signature"},
	} {
		b.bad(c.name, c.in, "ErrBadSignature", c.msg)
	}
	return b.vectors
}
