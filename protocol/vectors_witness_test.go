package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// The vectors of the witness decoders (PROTOCOL.md §13), in
// testdata/vectors/witness.json: cosignature records, witness topic
// messages, evidence files and v3 receipts.

// updateWitnessVectors regenerates witness.json alone:
//
//	go test ./protocol -run TestVectors -update-witness-vectors
//
// (-update-vectors regenerates every file, witness.json among them.)
var updateWitnessVectors = flag.Bool("update-witness-vectors", false, "regenerate protocol/testdata/vectors/witness.json")

func TestWitnessVectorsFresh(t *testing.T) {
	if *updateWitnessVectors {
		writeVectorFile(t, "witness.json", genWitness(t))
	}
	if loadVectors(t)["witness.json"] == nil {
		t.Fatal("vector file witness.json is missing")
	}
}

// writeVectorFile writes one vector file as writeVectors does.
func writeVectorFile(t *testing.T, name string, f *vectorFile) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vectorsDir, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func init() {
	for k, v := range map[string]error{
		"ErrBadCosignature":    ErrBadCosignature,
		"ErrNotWitnessed":      ErrNotWitnessed,
		"ErrHeadTime":          ErrHeadTime,
		"ErrNoEquivocation":    ErrNoEquivocation,
		"ErrMalformedEvidence": ErrMalformedEvidence,
	} {
		vectorSentinels[k] = v
	}
	for k, v := range witnessDecoders {
		vectorDecoders[k] = v
	}
}

// vectorWitnesses is the witness policy v3 receipts are checked with: 2
// cosignatures of the witnesses 1000 and 2000, each within a minute of
// its head.
func vectorWitnesses(tb testing.TB) *WitnessPolicy {
	tb.Helper()
	p, err := NewWitnessPolicy(testkeys.Directory(tb, "server", "1000", "2000", "outsider"), 2, time.Minute, "1000", "2000")
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

var witnessDecoders = map[string]func(tb testing.TB, v *vector, in []byte) (map[string]string, error){
	"ParseCosignature": func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		c, err := ParseCosignature(in)
		if err != nil {
			return nil, err
		}
		if re := c.Encode(); !bytes.Equal(re, in) {
			tb.Errorf("re-encodes to %x", re)
		}
		return vecCosignatureFields(c), nil
	},
	"ParseGossipMessage": func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		m, err := ParseGossipMessage(in)
		if err != nil {
			return nil, err
		}
		var re []byte
		f := map[string]string{}
		switch {
		case m.Evidence != nil:
			re = EncodeGossipEvidence(m.Evidence)
			f["kind"] = "evidence"
			f["first_size"] = strconv.FormatUint(m.Evidence.First.Head.Size, 10)
			f["second_size"] = strconv.FormatUint(m.Evidence.Second.Head.Size, 10)
			f["path_length"] = strconv.Itoa(len(m.Evidence.Path))
		case m.Cosig != nil:
			re = EncodeGossipCosigned(m.Head, m.Cosig)
			f = vecCosignatureFields(m.Cosig.Cosig)
			f["kind"] = "cosigned"
		default:
			re = EncodeGossipHead(m.Head)
			f = vecTreeHeadFields(m.Head.Head)
			f["kind"] = "head"
		}
		if !bytes.Equal(re, in) {
			tb.Errorf("re-encodes to %x", re)
		}
		return f, nil
	},
	"ParseEvidenceFile": func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		f, err := ParseEvidenceFile(in)
		if err != nil {
			return nil, atStage("parse", err)
		}
		kind, err := f.Verify(vectorTrust(tb))
		if err != nil {
			return nil, atStage("verify", err)
		}
		return map[string]string{"kind": kind, "first_size": strconv.FormatUint(f.First.Size, 10),
			"second_size": strconv.FormatUint(f.Second.Size, 10), "path_length": strconv.Itoa(len(f.Path))}, nil
	},
	"ParseWitnessedReceipt": func(tb testing.TB, v *vector, in []byte) (map[string]string, error) {
		r, err := ParseReceipt(in)
		if err != nil {
			return nil, atStage("parse", err)
		}
		var doc []byte
		if v.DocumentHash != "" {
			if doc, err = hex.DecodeString(v.DocumentHash); err != nil {
				tb.Fatal(err)
			}
		}
		s, good, err := r.VerifyWitnessed(vectorTrust(tb), vectorWitnesses(tb), doc, nil)
		if err != nil {
			return nil, atStage("verify", err)
		}
		f := vecStatementFields(s)
		f["format"] = r.Format
		f["cosigned_size"] = strconv.FormatUint(r.CosignedHead.Size, 10)
		ids := make([]string, len(good))
		for i, c := range good {
			ids[i] = string(c.Cosig.WitnessID)
		}
		f["witnesses"] = strings.Join(ids, ",")
		return f, nil
	},
}

func vecCosignatureFields(c *Cosignature) map[string]string {
	return map[string]string{
		"server_id":       string(c.ServerID),
		"server_peer_id":  c.ServerPeer.String(),
		"size":            strconv.FormatUint(c.Size, 10),
		"root_hash":       hex.EncodeToString(c.Root[:]),
		"head_time":       FormatTime(c.HeadTime),
		"witness_id":      string(c.WitnessID),
		"witness_peer_id": c.WitnessPeer.String(),
		"time":            FormatTime(c.Time),
	}
}

func genWitness(t *testing.T) *vectorFile {
	var all []vector
	tree := newMemTree(t, "leaf", 0, 9)
	other := newMemTree(t, "other", 0, 9)
	head := tree.head(t, 9, sampleTime)
	small := tree.head(t, 5, sampleTime)
	cosig := cosignAs(t, "2000", head.Head, sampleTime.Add(time.Second))
	srv := entry(t, "server")

	b := &vectorBuilder{decoder: "ParseCosignature"}
	c := cosig.Cosig
	b.ok("2000 cosigns server's head of size 9", cosig.Encoded, vecCosignatureFields(c))
	zero := NewCosignature(&TreeHead{ServerID: "server", ServerPeer: srv.PeerID, Time: time.Time{}}, entry(t, "1000"), time.Time{})
	b.ok("the empty tree, year 1", zero.Encode(), vecCosignatureFields(zero))
	rec := func(edit func(f [][]byte) [][]byte) []byte {
		f := [][]byte{[]byte(c.ServerID), []byte(c.ServerPeer.String()), u64(c.Size), c.Root[:], []byte(FormatTime(c.HeadTime)),
			[]byte(c.WitnessID), []byte(c.WitnessPeer.String()), []byte(FormatTime(c.Time))}
		return EncodeRecord(CosignatureTag, edit(f)...)
	}
	for _, x := range []struct {
		name string
		edit func(f [][]byte) [][]byte
		msg  string
	}{
		{"empty server id", setField(0, nil), "cosignature server: invalid id"},
		{"server peer ID as CIDv1", setField(1, []byte(peer.ToCid(srv.PeerID).String())), "cosignature server peer ID: invalid peer ID"},
		{"size of 7 bytes", setField(2, fill(7, 0)), "tree size is 7 bytes, want 8"},
		{"size in decimal", setField(2, []byte("9")), "tree size is 1 bytes, want 8"},
		{"root of 31 bytes", setField(3, fill(31, 0)), "root hash is 31 bytes, want 32"},
		{"root in hex", setField(3, []byte(hex.EncodeToString(c.Root[:]))), "root hash is 64 bytes, want 32"},
		{"head time with six digits", setField(4, []byte("2026-01-02T03:04:05.123456Z")), "nine fractional digits"},
		{"witness id with a space", setField(5, []byte("20 00")), "cosignature witness: invalid id"},
		{"empty witness peer ID", setField(6, nil), "cosignature witness peer ID: invalid peer ID"},
		{"time with an offset", setField(7, []byte("2026-01-02T03:04:06.123456789+00:00")), "nine fractional digits"},
		{"7 fields", func(f [][]byte) [][]byte { return f[:7] }, "7 fields, want 8"},
		{"9 fields", func(f [][]byte) [][]byte { return append(f, nil) }, "9 fields, want 8"},
	} {
		b.bad(x.name, rec(x.edit), "ErrMalformed", x.msg)
	}
	b.bad("a tree head", head.Encoded, "ErrMalformed", `record type "tsnode-tree-head-v1", want "tsnode-cosignature-v1"`)
	b.bad("trailing byte", append(bytes.Clone(cosig.Encoded), 0), "ErrMalformed", "truncated field length")
	b.bad("empty", nil, "ErrMalformed", "empty record")
	all = append(all, b.vectors...)

	b = &vectorBuilder{decoder: "ParseGossipMessage"}
	b.ok("head", EncodeGossipHead(head), func() map[string]string { f := vecTreeHeadFields(head.Head); f["kind"] = "head"; return f }())
	b.ok("cosigned", EncodeGossipCosigned(head, cosig), func() map[string]string { f := vecCosignatureFields(c); f["kind"] = "cosigned"; return f }())
	inc := &Evidence{First: small, Second: other.head(t, 9, sampleTime), Path: other.path(t, 5, 9)}
	b.ok("evidence, inconsistent", EncodeGossipEvidence(inc), fmtFields("kind", "evidence", "first_size", "5", "second_size", "9", "path_length", strconv.Itoa(len(inc.Path))))
	fork := &Evidence{First: small, Second: other.head(t, 5, sampleTime)}
	b.ok("evidence, fork", EncodeGossipEvidence(fork), fmtFields("kind", "evidence", "first_size", "5", "second_size", "5", "path_length", "0"))
	const htag, ctag, etag = "tsnode/gossip-head/v1", "tsnode/gossip-cosigned/v1", "tsnode/gossip-evidence/v1"
	pad := MaxGossipMessageSize - len(EncodeRecord(htag, head.Encoded, nil))
	b.ok("head at 8192 bytes", EncodeRecord(htag, head.Encoded, fill(pad, 1)), func() map[string]string { f := vecTreeHeadFields(head.Head); f["kind"] = "head"; return f }())
	b.bad("8193 bytes", EncodeRecord(htag, head.Encoded, fill(pad+1, 1)), "ErrTooLarge", "gossip message of 8193 bytes, maximum 8192")
	b.bad("unknown tag", EncodeRecord("tsnode/gossip-head/v2", head.Encoded, head.Signature), "ErrMalformed", `not a witness topic message (record type "tsnode/gossip-head/v2")`)
	b.bad("a tree head", head.Encoded, "ErrMalformed", `not a witness topic message (record type "tsnode-tree-head-v1")`)
	b.bad("empty", nil, "ErrMalformed", "not a witness topic message")
	b.bad("head without signature", EncodeRecord(htag, head.Encoded, nil), "ErrMalformed", "tree head of size 9 without a signature")
	b.bad("head, 3 fields", EncodeRecord(htag, head.Encoded, head.Signature, nil), "ErrMalformed", "3 fields, want 2")
	b.bad("cosignature of another head", EncodeGossipCosigned(small, cosig), "ErrMalformed", "the cosignature is of another head than the one it came with")
	b.bad("cosigned, not a cosignature", EncodeRecord(ctag, head.Encoded, head.Signature, head.Encoded, cosig.Signature), "ErrMalformed", `record type "tsnode-tree-head-v1", want "tsnode-cosignature-v1"`)
	b.bad("cosigned, head without signature", EncodeRecord(ctag, head.Encoded, nil, cosig.Encoded, cosig.Signature), "ErrMalformed", "without a signature")
	b.bad("evidence, path of 33 bytes", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, head.Signature, fill(33, 0)), "ErrMalformed", "evidence path of 33 bytes, not a multiple of 32")
	b.bad("evidence, second without signature", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, nil, nil), "ErrMalformed", "tree head of size 9 without a signature")
	b.bad("evidence, 4 fields", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, head.Signature), "ErrMalformed", "4 fields, want 5")
	all = append(all, b.vectors...)

	b = &vectorBuilder{decoder: "ParseEvidenceFile"}
	parse, verify := withStage("parse"), withStage("verify")
	const me = "ErrMalformedEvidence"
	ef := func(e *Evidence) []byte { return evidenceFileOf(t, e) }
	forkFile := ef(fork)
	b.ok("fork", forkFile, fmtFields("kind", "fork", "first_size", "5", "second_size", "5", "path_length", "0"))
	b.ok("inconsistent, 5 of 9", ef(inc), fmtFields("kind", "inconsistent", "first_size", "5", "second_size", "9", "path_length", strconv.Itoa(len(inc.Path))))
	inc4 := &Evidence{First: tree.head(t, 4, sampleTime), Second: other.head(t, 9, sampleTime), Path: other.path(t, 4, 9)}
	b.ok("inconsistent, 4 of 9 (the prefix root first)", ef(inc4), fmtFields("kind", "inconsistent", "first_size", "4", "second_size", "9", "path_length", strconv.Itoa(len(inc4.Path))))
	rollback := &Evidence{First: tree.head(t, 5, sampleTime.Add(time.Second)), Second: head}
	b.ok("rollback", ef(rollback), fmtFields("kind", "rollback", "first_size", "5", "second_size", "9", "path_length", "0"))
	b.bad("consistent heads, valid path", ef(&Evidence{First: small, Second: head, Path: tree.path(t, 5, 9)}), "ErrNoEquivocation", "the path shows the first head is a prefix of the second", verify)
	b.bad("consistent heads, no path", ef(&Evidence{First: small, Second: head}), "ErrNoEquivocation", "no consistency path", verify)
	b.bad("path of the wrong length", ef(&Evidence{First: small, Second: inc.Second, Path: inc.Path[1:]}), "ErrNoEquivocation", "cannot be between sizes 5 and 9", verify)
	b.bad("the same head twice", ef(&Evidence{First: small, Second: small}), "ErrNoEquivocation", "two heads of size 5 with the same root", verify)
	b.bad("kind mismatch", replaceOnce(t, forkFile, `"kind": "fork"`, `"kind": "inconsistent"`), me, `member kind is "inconsistent", the heads prove "fork"`, verify)
	b.bad("first larger", ef(&Evidence{First: head, Second: small}), me, "the first head's size 9 is larger than the second's 5", verify)
	of1000 := headAs(t, "1000", 5, other.root(t, 5), sampleTime)
	b.bad("signed by an untrusted key", ef(&Evidence{First: small, Second: of1000}), "ErrUntrustedSigner", "second head: untrusted signer: 1000 is not a trusted authority", verify)
	sig := b64(fork.Second.Signature)
	b.bad("signature changed", replaceOnce(t, forkFile, sig, "A"+sig[1:]), "ErrBadSignature", "second head: bad server signature", verify)
	b.bad("unknown format", replaceOnce(t, forkFile, `"format": "tsnode-evidence-v1"`, `"format": "tsnode-evidence-v2"`), me, `format "tsnode-evidence-v2", want "tsnode-evidence-v1"`, verify)
	b.bad("unknown member", addMember(forkFile, "  \"note\": \"\",\n"), me, `unknown member "note"`, parse)
	b.bad("missing path", replaceOnce(t, forkFile, ",\n  \"path\": []", ""), me, `member "path" is missing`, parse)
	b.bad("missing kind", replaceOnce(t, forkFile, "  \"kind\": \"fork\",\n", ""), me, `member "kind" is missing`, parse)
	b.bad("path null", replaceOnce(t, forkFile, `"path": []`, `"path": null`), me, `member "path" is null`, parse)
	b.bad("repeated member", replaceOnce(t, forkFile, `"kind": "fork",`, `"kind": "fork", "kind": "fork",`), me, `member "kind" appears twice`, parse)
	b.bad("empty", nil, me, "EOF", parse)
	all = append(all, b.vectors...)

	all = append(all, genWitnessedReceipts(t)...)
	return &vectorFile{Description: "The witness decoders (PROTOCOL.md §13). ParseCosignature (§13.3) and ParseGossipMessage (§13.2): accepted inputs re-encode to the input; a cosigned message's fields are its cosignature's. ParseEvidenceFile, then EvidenceFile.Verify (§13.5), trusting the authority \"server\" with the internal/testkeys keys. ParseWitnessedReceipt: ParseReceipt, then Receipt.VerifyWitnessed (§13.4) trusting \"server\" and requiring 2 cosignatures of the witnesses 1000 and 2000 within 1 minute of their head; witnesses lists those counted. stage: which call refuses.", Vectors: all}
}

func genWitnessedReceipts(t *testing.T) []vector {
	b := &vectorBuilder{decoder: "ParseWitnessedReceipt"}
	parse, verify := withStage("parse"), withStage("verify")
	const mr = "ErrMalformedReceipt"
	f := newV3Fixture(t)
	st := f.stamps[1].Statement
	fields := func(size, witnesses string) map[string]string {
		m := vecStatementFields(st)
		m["format"], m["cosigned_size"], m["witnesses"] = ReceiptFormatV3, size, witnesses
		return m
	}
	mk := func(head *SignedTreeHead, proof tlog.TreeProof, cosigs ...*SignedCosignature) []byte {
		return NewWitnessedReceipt(f.v2, head, proof, cosigs).Marshal()
	}
	at := f.head7.Head.Time
	v3 := mk(f.head7, f.proof, f.cosigs...)
	b.ok("2 of 2", v3, fields("7", "1000,2000"))
	b.ok("2 of 2, for its document", v3, fields("7", "1000,2000"), withDocument(hex.EncodeToString(st.DocumentHash)))
	c1, c2 := f.cosigs[0], f.cosigs[1]
	outsider := cosignAs(t, "outsider", f.head7.Head, at)
	b.ok("2 of 3, one not required", mk(f.head7, f.proof, outsider, c2, c1), fields("7", "2000,1000"))
	same := mk(f.head6, nil, cosignAs(t, "1000", f.head6.Head, f.head6.Head.Time), cosignAs(t, "2000", f.head6.Head, f.head6.Head.Time))
	b.ok("cosigned head of the receipt's size, no consistency_proof", same, fields("6", "1000,2000"))

	b.bad("for another document", v3, "ErrHashMismatch", "the receipt is for", withDocument(strings.Repeat("00", 32)), verify)
	b.bad("1 of 2", mk(f.head7, f.proof, c1), "ErrNotWitnessed", "1 valid cosignatures of the head of size 7, 2 required from 1000, 2000", verify)
	b.bad("one witness twice", mk(f.head7, f.proof, c1, c1), "ErrNotWitnessed", "1000 cosigned twice (counted once)", verify)
	b.bad("a cosignature of another head", mk(f.head7, f.proof, c1, cosignAs(t, "2000", f.head6.Head, at)), "ErrNotWitnessed", "2000 cosigned the head of size 6", verify)
	b.bad("a cosignature badly signed", mk(f.head7, f.proof, c1, &SignedCosignature{Cosig: c2.Cosig, Encoded: c2.Encoded, Signature: flip(c2.Signature, 1)}), "ErrNotWitnessed", "the cosignature of 2000 does not verify with its key", verify)
	b.bad("a cosignature dated too late", mk(f.head7, f.proof, c1, cosignAs(t, "2000", f.head7.Head, at.Add(time.Hour))), "ErrNotWitnessed", "(tolerance 1m0s)", verify)
	damaged := append(tlog.TreeProof(nil), f.proof...)
	damaged[0][0] ^= 1
	b.bad("consistency proof changed", mk(f.head7, damaged, f.cosigs...), "ErrInconsistent", "the cosigned head does not extend the receipt's tree head", verify)
	untrusted := headAs(t, "1000", 7, f.head7.Head.Root, at)
	b.bad("cosigned head signed by an untrusted key", mk(untrusted, f.proof, cosignAs(t, "1000", untrusted.Head, at), cosignAs(t, "2000", untrusted.Head, at)), "ErrUntrustedSigner", "cosigned_head: untrusted signer", verify)
	b.bad("a v2 receipt", f.v2.Marshal(), "ErrNotWitnessed", "a tsnode-receipt-v2 receipt carries no cosignatures", verify)
	b.bad("witness_id of another witness", replaceOnce(t, v3, `"witness_id": "1000"`, `"witness_id": "2001"`), mr, `field cosignatures[0].witness_id ("2001") does not match the signed cosignature ("1000")`, verify)
	cosigsStart := bytes.Index(v3, []byte(`  "cosignatures"`))
	proofStart := bytes.Index(v3, []byte(`  "consistency_proof"`))
	b.bad("missing consistency_proof", append(bytes.Clone(v3[:proofStart]), v3[cosigsStart:]...), mr, `member "consistency_proof" is missing (cosigned_head.size 7 is not tree_head.size 6)`, parse)
	b.bad("empty cosignatures", append(bytes.Clone(v3[:cosigsStart]), "  \"cosignatures\": []\n}\n"...), mr, `member "cosignatures" is empty`, parse)
	b.bad("missing cosignatures[0].signature", replaceOnce(t, v3, ",\n      \"signature\": \""+b64(c1.Signature)+"\"", ""), mr, `member "cosignatures[0].signature" is missing`, parse)
	b.bad("unknown member in a cosignature", replaceOnce(t, v3, `"witness_id": "1000",`, `"witness_id": "1000", "note": "",`), mr, `unknown member "cosignatures[0].note"`, parse)
	b.bad("v2 with cosignatures", addMember(f.v2.Marshal(), string(v3[cosigsStart:len(v3)-2])+",\n"), mr, "a tsnode-receipt-v2 receipt has no cosignatures", parse)
	b.bad("v3 with signature", addMember(v3, "  \"signature\": \"AAAA\",\n"), mr, "a tsnode-receipt-v3 receipt has no signature", parse)
	return b.vectors
}
