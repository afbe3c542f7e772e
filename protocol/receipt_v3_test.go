package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// v3Fixture is a v2 receipt of stamp 1 in the tree of size 6 of a real
// log, the head of size 7 of the same log, the proof between them, and
// cosignatures of the size-7 head by the witnesses 1000 and 2000.
type v3Fixture struct {
	*logFixture
	v2     *Receipt
	head6  *SignedTreeHead
	head7  *SignedTreeHead
	proof  tlog.TreeProof
	cosigs []*SignedCosignature
	trust  *Trust
	policy *WitnessPolicy // 2 of 1000, 2000, within a minute
}

func newV3Fixture(t testing.TB) *v3Fixture {
	t.Helper()
	f := &v3Fixture{logFixture: newLogFixture(t)}
	f.head6, f.head7 = f.stamps[1].Head, f.signer.Head()
	if f.head6.Head.Size != 6 || f.head7.Head.Size != 7 {
		t.Fatalf("heads of sizes %d and %d", f.head6.Head.Size, f.head7.Head.Size)
	}
	f.v2 = f.receiptIn(t, 1, f.head6)
	var err error
	if f.proof, err = f.lg.ConsistencyProof(6, 7); err != nil {
		t.Fatal(err)
	}
	at := f.head7.Head.Time.Add(2 * time.Second)
	f.cosigs = []*SignedCosignature{cosignAs(t, "1000", f.head7.Head, at), cosignAs(t, "2000", f.head7.Head, at.Add(time.Second))}
	f.trust = trustOf(t, f.dir)
	f.policy = policyOf(t, 2, time.Minute, "1000", "2000")
	return f
}

// v3 is the witnessed receipt, written out and parsed back.
func (f *v3Fixture) v3(t testing.TB, head *SignedTreeHead, proof tlog.TreeProof, cosigs ...*SignedCosignature) *Receipt {
	t.Helper()
	r, err := ParseReceipt(NewWitnessedReceipt(f.v2, head, proof, cosigs).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *v3Fixture) doc() []byte { return f.stamps[1].Statement.DocumentHash }

func TestWitnessedReceiptAccepted(t *testing.T) {
	f := newV3Fixture(t)
	r := f.v3(t, f.head7, f.proof, f.cosigs...)
	if r.Format != ReceiptFormatV3 || r.CosignedHead == nil || len(r.ConsistencyProof) != len(f.proof) || len(r.Cosignatures) != 2 {
		t.Fatalf("v3 receipt %+v", r)
	}
	if f.v2.Format != ReceiptFormatV2 || f.v2.CosignedHead != nil {
		t.Fatal("NewWitnessedReceipt changed the v2 receipt")
	}
	rc := r.Cosignatures[0]
	w := entry(t, "1000")
	if rc.WitnessID != "1000" || rc.WitnessPeer != w.PeerID.String() || rc.Time != FormatTime(f.cosigs[0].Cosig.Time) ||
		rc.SignedData != b64(f.cosigs[0].Encoded) || rc.Signature != b64(f.cosigs[0].Signature) {
		t.Fatalf("cosignatures[0] = %+v", rc)
	}
	// The members come after the v2 ones, in the order of §13.4.
	out := string(r.Marshal())
	if i, j, k, l := strings.Index(out, `"tree_head"`), strings.Index(out, `"cosigned_head"`), strings.Index(out, `"consistency_proof"`), strings.Index(out, `"cosignatures"`); !(i < j && j < k && k < l) {
		t.Fatalf("members out of order:\n%s", out)
	}
	st, good, err := r.VerifyWitnessed(f.trust, f.policy, f.doc(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Encode(), f.stamps[1].Statement.Encode()) || len(good) != 2 {
		t.Fatalf("verified %d cosignatures", len(good))
	}
	cache := NewHeadCache(8)
	for range 2 {
		if _, _, err := r.VerifyWitnessed(f.trust, f.policy, f.doc(), cache); err != nil {
			t.Fatal(err)
		}
	}
	// K of more.
	extra := cosignAs(t, "outsider", f.head7.Head, f.head7.Head.Time)
	if _, good, err := f.v3(t, f.head7, f.proof, extra, f.cosigs[1], f.cosigs[0]).VerifyWitnessed(f.trust, f.policy, nil, nil); err != nil || len(good) != 2 {
		t.Fatalf("with an extra cosignature: %v, %d", err, len(good))
	}
	p1 := policyOf(t, 1, time.Minute, "2000")
	if _, good, err := r.VerifyWitnessed(f.trust, p1, nil, nil); err != nil || len(good) != 1 || good[0].Cosig.WitnessID != "2000" {
		t.Fatalf("1 of 2000: %v, %d", err, len(good))
	}

	// Cosigned head of the receipt's size: no consistency proof member.
	same := f.v3(t, f.head6, nil, cosignAs(t, "1000", f.head6.Head, f.head6.Head.Time), cosignAs(t, "2000", f.head6.Head, f.head6.Head.Time))
	if bytes.Contains(same.Marshal(), []byte("consistency_proof")) {
		t.Fatal("a proof between heads of one size is written")
	}
	if _, _, err := same.VerifyWitnessed(f.trust, f.policy, f.doc(), nil); err != nil {
		t.Fatal(err)
	}
	// The same tree, re-signed later (§13.2), cosigned.
	later := signHead(t, "server", &TreeHead{ServerID: "server", ServerPeer: f.head6.Head.ServerPeer, Size: 6, Root: f.head6.Head.Root, Time: f.head6.Head.Time.Add(30 * time.Second)})
	resigned := f.v3(t, later, nil, cosignAs(t, "1000", later.Head, later.Head.Time), cosignAs(t, "2000", later.Head, later.Head.Time))
	if _, _, err := resigned.VerifyWitnessed(f.trust, f.policy, f.doc(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestWitnessedReceiptRefused(t *testing.T) {
	f := newV3Fixture(t)
	dir := f.dir
	damaged := append(tlog.TreeProof(nil), f.proof...)
	damaged[0][5] ^= 1
	at := f.head7.Head.Time
	untrusted := headAs(t, "1000", 7, f.head7.Head.Root, at)
	wrongKey := signHead(t, "outsider", &TreeHead{ServerID: "server", ServerPeer: entry(t, "outsider").PeerID, Size: 7, Root: f.head7.Head.Root, Time: at})
	otherLog := newMemTree(t, "x", 0, 7)
	otherHead := headAs(t, "server", 7, otherLog.root(t, 7), at)
	c1, c2 := f.cosigs[0], f.cosigs[1]
	for _, c := range []struct {
		name     string
		r        *Receipt
		trust    *Trust
		sentinel error
		msg      string
	}{
		{"K-1 cosignatures", f.v3(t, f.head7, f.proof, c1), f.trust, ErrNotWitnessed, "1 valid cosignatures of the head of size 7, 2 required from 1000, 2000"},
		{"one witness twice", f.v3(t, f.head7, f.proof, c1, c1), f.trust, ErrNotWitnessed, "1000 cosigned twice (counted once)"},
		{"a cosignature of another head", f.v3(t, f.head7, f.proof, c1, cosignAs(t, "2000", f.head6.Head, at)), f.trust, ErrNotWitnessed, "2000 cosigned the head of size 6"},
		{"a cosignature badly signed", f.v3(t, f.head7, f.proof, c1, &SignedCosignature{Cosig: c2.Cosig, Encoded: c2.Encoded, Signature: flip(c2.Signature, 1)}), f.trust, ErrNotWitnessed, "the cosignature of 2000 does not verify"},
		{"a cosignature too late", f.v3(t, f.head7, f.proof, c1, cosignAs(t, "2000", f.head7.Head, at.Add(time.Hour))), f.trust, ErrNotWitnessed, "(tolerance 1m0s)"},
		{"a cosignature of a witness not required", f.v3(t, f.head7, f.proof, c1, cosignAs(t, "outsider", f.head7.Head, at)), f.trust, ErrNotWitnessed, "outsider is not one of the witnesses required"},
		{"bad consistency proof", f.v3(t, f.head7, damaged, f.cosigs...), f.trust, ErrInconsistent, "the cosigned head does not extend the receipt's tree head"},
		{"consistency proof of other sizes", f.v3(t, f.head7, mustProof(t, f.logFixture, 5, 7), f.cosigs...), f.trust, ErrNotWitnessed, "does not extend"},
		{"cosigned head of another log", f.v3(t, otherHead, f.proof, cosignAs(t, "1000", otherHead.Head, at), cosignAs(t, "2000", otherHead.Head, at)), f.trust, ErrInconsistent, "size 6 -> 7"},
		{"cosigned head smaller", f.v3(t, f.stamps[0].Head, f.proof, cosignAs(t, "1000", f.stamps[0].Head.Head, at), cosignAs(t, "2000", f.stamps[0].Head.Head, at)), f.trust, ErrInconsistent, "the cosigned head does not extend the receipt's tree head"},
		{"cosigned head signed by an untrusted key", f.v3(t, untrusted, f.proof, cosignAs(t, "1000", untrusted.Head, at), cosignAs(t, "2000", untrusted.Head, at)), f.trust, ErrUntrustedSigner, "cosigned_head: untrusted signer: 1000 is not a trusted authority"},
		{"cosigned head of another trusted server", f.v3(t, untrusted, f.proof, cosignAs(t, "1000", untrusted.Head, at), cosignAs(t, "2000", untrusted.Head, at)), trustOf(t, dir, "server", "1000"), ErrDifferentServers, "the old head is of server, the new one of 1000"},
		{"cosigned head signed by another key", f.v3(t, wrongKey, f.proof, cosignAs(t, "1000", wrongKey.Head, at), cosignAs(t, "2000", wrongKey.Head, at)), f.trust, ErrWrongServerKey, "cosigned_head: wrong server key"},
		{"cosigned head signature changed", f.v3(t, &SignedTreeHead{Head: f.head7.Head, Encoded: f.head7.Encoded, Signature: flip(f.head7.Signature, 2)}, f.proof, f.cosigs...), f.trust, ErrBadSignature, "cosigned_head: bad server signature"},
		{"a v2 receipt", f.v2, f.trust, ErrNotWitnessed, "a tsnode-receipt-v2 receipt carries no cosignatures"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, good, err := c.r.VerifyWitnessed(c.trust, f.policy, f.doc(), nil)
			if st != nil || good != nil {
				t.Error("returned a statement or cosignatures with the error")
			}
			wantErr(t, err, c.sentinel, c.msg)
			if c.sentinel == ErrNotWitnessed && VerdictFor(err) != VerdictNotWitnessed {
				t.Errorf("verdict %s", VerdictFor(err))
			}
			// Without a policy, only the v2 part counts.
			if _, good, err := c.r.VerifyWitnessed(c.trust, nil, f.doc(), nil); err != nil || good != nil {
				t.Errorf("without a policy: %v", err)
			}
			if _, err := c.r.Verify(c.trust, f.doc()); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	// A v2 receipt that is not valid fails as such, policy or not.
	bad := cloneReceipt(f.v3(t, f.head7, f.proof, f.cosigs...))
	bad.TreeHead.Signature = b64(flip(unb64(t, bad.TreeHead.Signature), 0))
	if _, _, err := bad.VerifyWitnessed(f.trust, f.policy, f.doc(), nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tree head signature changed: %v", err)
	}
	other := fill(HashSize, 0)
	if _, _, err := f.v3(t, f.head7, f.proof, f.cosigs...).VerifyWitnessed(f.trust, f.policy, other, nil); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("another document: %v", err)
	}
}

func mustProof(t testing.TB, f *logFixture, from, to uint64) tlog.TreeProof {
	t.Helper()
	p, err := f.lg.ConsistencyProof(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWitnessedReceiptMalformed(t *testing.T) {
	f := newV3Fixture(t)
	v3 := NewWitnessedReceipt(f.v2, f.head7, f.proof, f.cosigs).Marshal()
	v2 := f.v2.Marshal()
	p0 := hex.EncodeToString(f.proof[0][:])
	sig0 := b64(f.cosigs[0].Signature)
	sd0 := b64(f.cosigs[0].Encoded)
	cosignedStart := bytes.Index(v3, []byte(`  "cosigned_head"`))
	proofStart := bytes.Index(v3, []byte(`  "consistency_proof"`))
	cosigsStart := bytes.Index(v3, []byte(`  "cosignatures"`))
	noProof := append(bytes.Clone(v3[:proofStart]), v3[cosigsStart:]...)
	w1 := entry(t, "1000")
	parse, verify := "parse", "verify"
	for _, c := range []struct {
		name, stage string
		in          []byte
		msg         string
	}{
		{"missing consistency_proof", parse, noProof, `member "consistency_proof" is missing (cosigned_head.size 7 is not tree_head.size 6)`},
		{"missing cosigned_head", parse, append(bytes.Clone(v3[:cosignedStart]), v3[proofStart:]...), `member "cosigned_head" is missing`},
		{"missing cosignatures", parse, append(bytes.TrimSuffix(bytes.Clone(v3[:cosigsStart]), []byte(",\n")), "\n}\n"...), `member "cosignatures" is missing`},
		{"empty cosignatures", parse, append(bytes.Clone(v3[:cosigsStart]), "  \"cosignatures\": []\n}\n"...), `member "cosignatures" is empty`},
		{"cosignatures null", parse, append(bytes.Clone(v3[:cosigsStart]), "  \"cosignatures\": null\n}\n"...), `member "cosignatures" is null`},
		{"cosignatures an object", parse, append(bytes.Clone(v3[:cosigsStart]), "  \"cosignatures\": {}\n}\n"...), `member "cosignatures" is not an array`},
		{"cosignatures of strings", parse, append(bytes.Clone(v3[:cosigsStart]), "  \"cosignatures\": [\"x\"]\n}\n"...), `member cosignatures[0] is not an object`},
		{"missing cosignatures[0].signature", parse, replaceOnce(t, v3, ",\n      \"signature\": \""+sig0+"\"", ""), `member "cosignatures[0].signature" is missing`},
		{"unknown member in a cosignature", parse, replaceOnce(t, v3, "      \"witness_id\": \"1000\",", "      \"witness_id\": \"1000\", \"note\": 1,"), `unknown member "cosignatures[0].note"`},
		{"repeated member in a cosignature", parse, replaceOnce(t, v3, "      \"witness_id\": \"1000\",", "      \"witness_id\": \"1000\", \"witness_id\": \"1000\","), `member "cosignatures[0].witness_id" appears twice`},
		{"missing cosigned_head.signature", parse, replaceOnce(t, v3, ",\n    \"signature\": \""+b64(f.head7.Signature)+"\"", ""), `member "cosigned_head.signature" is missing`},
		{"v3 with signature", parse, addMember(v3, "  \"signature\": \"AAAA\",\n"), "a tsnode-receipt-v3 receipt has no signature"},
		{"v2 with v3 members", parse, addMember(v2, string(v3[cosignedStart:len(v3)-2])+",\n"), "a tsnode-receipt-v2 receipt has no consistency_proof, cosigned_head, cosignatures"},
		{"v2 with cosignatures", parse, addMember(v2, string(v3[cosigsStart:len(v3)-2])+",\n"), "a tsnode-receipt-v2 receipt has no cosignatures"},
		{"v2 with an empty consistency_proof", parse, addMember(v2, "  \"consistency_proof\": [],\n"), "a tsnode-receipt-v2 receipt has no consistency_proof"},
		{"v1 with cosigned_head", parse, addMember(docExample(t, "hello.txt.receipt"), string(v3[cosignedStart:proofStart])), "a tsnode-receipt-v1 receipt has no"},
		{"v2 relabelled v3", parse, replaceOnce(t, v2, `"format": "tsnode-receipt-v2"`, `"format": "tsnode-receipt-v3"`), `member "cosigned_head" is missing`},

		{"witness_id of another witness", verify, replaceOnce(t, v3, `"witness_id": "1000"`, `"witness_id": "2001"`), `field cosignatures[0].witness_id ("2001") does not match the signed cosignature ("1000")`},
		{"witness_peer_id of another peer", verify, replaceOnce(t, v3, `"witness_peer_id": "`+w1.PeerID.String()+`"`, `"witness_peer_id": "`+entry(t, "2000").PeerID.String()+`"`), "field cosignatures[0].witness_peer_id"},
		{"time of a cosignature changed", verify, replaceOnce(t, v3, `"time": "`+FormatTime(f.cosigs[0].Cosig.Time)+`"`, `"time": "`+FormatTime(f.cosigs[0].Cosig.Time.Add(time.Nanosecond))+`"`), "field cosignatures[0].time"},
		{"signed_data not a cosignature", verify, replaceOnce(t, v3, sd0, b64(f.head7.Encoded)), "cosignatures[0].signed_data: malformed message: record type"},
		{"signed_data with a line break", verify, replaceOnce(t, v3, sd0, sd0[:40]+`\n`+sd0[40:]), "cosignatures[0].signed_data is not base64"},
		{"empty signature", verify, replaceOnce(t, v3, sig0, ""), "cosignatures[0].signature is missing or not base64"},
		{"consistency_proof hash in capitals", verify, append(bytes.Clone(v3[:proofStart]), replaceOnce(t, v3[proofStart:], p0, strings.ToUpper(p0))...), "consistency_proof[0] is not a 32-byte lowercase hex hash"},
		{"cosigned_head.size of another head", verify, replaceOnce(t, v3, `"size": 7,`, `"size": 8,`), `field cosigned_head.size ("8") does not match the signed tree head ("7")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseReceipt(c.in)
			if c.stage == verify {
				if err != nil {
					t.Fatalf("refused at parse: %v", err)
				}
				// Malformed witness parts are refused with or without a
				// policy.
				_, _, err = r.VerifyWitnessed(f.trust, nil, nil, nil)
				wantErr(t, err, ErrMalformedReceipt, c.msg)
				_, err = r.Verify(f.trust, nil)
				wantErr(t, err, ErrMalformedReceipt, c.msg)
				_, _, err = r.VerifyWitnessed(f.trust, f.policy, nil, nil)
			} else if r != nil {
				t.Error("returned a receipt with the error")
			}
			wantErr(t, err, ErrMalformedReceipt, c.msg)
			if VerdictFor(err) != VerdictMalformedReceipt {
				t.Errorf("verdict %s", VerdictFor(err))
			}
		})
	}

	// Members of v3 in a v1 or v2 receipt built in code, not parsed.
	for _, c := range []struct {
		name string
		r    func() *Receipt
		msg  string
	}{
		{"v2 with cosigned_head", func() *Receipt { r := cloneReceipt(f.v2); r.CosignedHead = newReceiptTreeHead(f.head7); return r }, "a tsnode-receipt-v2 receipt has no cosigned_head"},
		{"v2 with an empty consistency_proof", func() *Receipt { r := cloneReceipt(f.v2); r.ConsistencyProof = []string{}; return r }, "a tsnode-receipt-v2 receipt has no consistency_proof"},
		{"v2 with cosignatures", func() *Receipt {
			r := cloneReceipt(f.v2)
			r.Cosignatures = NewWitnessedReceipt(f.v2, f.head7, f.proof, f.cosigs).Cosignatures
			return r
		}, "a tsnode-receipt-v2 receipt has no cosignatures"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.r().Verify(f.trust, nil)
			wantErr(t, err, ErrMalformedReceipt, c.msg)
		})
	}
}

// TestWitnessedOf checks the decoded witness part.
func TestWitnessedOf(t *testing.T) {
	f := newV3Fixture(t)
	w, err := f.v3(t, f.head7, f.proof, f.cosigs...).WitnessedOf()
	if err != nil {
		t.Fatal(err)
	}
	if !SameHead(w.Head, f.head7) || len(w.Proof) != len(f.proof) || len(w.Cosigs) != 2 {
		t.Fatalf("witnessed %+v", w)
	}
	for i, c := range w.Cosigs {
		if *c.Cosig != *f.cosigs[i].Cosig || !bytes.Equal(c.Encoded, f.cosigs[i].Encoded) || !bytes.Equal(c.Signature, f.cosigs[i].Signature) {
			t.Errorf("cosignature %d differs", i)
		}
	}
	if _, err := f.v2.WitnessedOf(); !errors.Is(err, ErrNotWitnessed) {
		t.Fatalf("v2: %v", err)
	}
}
