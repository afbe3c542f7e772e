package protocol

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// logFixture is a real log of 7 stamps in three batches: [0], [1..5], [6].
// Leaves 1..4 are not the last of their tree.
type logFixture struct {
	lg     *merklelog.Log
	signer *testLog
	stamps []*LogStamp
	dir    *identity.Directory
}

func newLogFixture(t testing.TB) *logFixture {
	t.Helper()
	lg := openLog(t, t.TempDir())
	s := newSigner(t, lg, fixedClock(logTime))
	f := &logFixture{lg: lg, signer: s, dir: testkeys.Directory(t, "server", "1000", "2000", "outsider")}
	requester := entry(t, "1000")
	for _, batch := range [][]int{{0}, {1, 2, 3, 4, 5}, {6}} {
		f.stamps = append(f.stamps, s.batch(t, requester, batch...)...)
	}
	return f
}

// receiptIn is stamp i's receipt with its proof into the tree of head.
func (f *logFixture) receiptIn(t testing.TB, i int, head *SignedTreeHead) *Receipt {
	t.Helper()
	st := f.stamps[i].Statement
	proof, err := f.lg.InclusionProof(st.Serial, head.Head.Size)
	if err != nil {
		t.Fatal(err)
	}
	return NewLogReceipt(st, proof, head)
}

// cloneReceipt deep-copies a receipt so that edits do not leak.
func cloneReceipt(r *Receipt) *Receipt {
	c := *r
	c.InclusionProof = append([]string(nil), r.InclusionProof...)
	if r.TreeHead != nil {
		th := *r.TreeHead
		c.TreeHead = &th
	}
	return &c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setReadable makes the readable fields of r agree with the leaf s, so
// that only the leaf bytes themselves are under test.
func setReadable(r *Receipt, s *Statement) {
	w := readableFields(s)
	r.HashAlgorithm, r.DocumentHash, r.Time, r.Serial = w.HashAlgorithm, w.DocumentHash, w.Time, w.Serial
	r.RequesterID, r.RequesterPeer, r.ServerID, r.ServerPeer, r.Nonce = w.RequesterID, w.RequesterPeer, w.ServerID, w.ServerPeer, w.Nonce
}

// setHead replaces r's tree head by the encoded head enc with signature
// sig, readable fields made to agree when enc parses.
func setHead(r *Receipt, enc, sig []byte) {
	r.TreeHead.SignedData, r.TreeHead.Signature = b64(enc), b64(sig)
	if h, err := ParseTreeHead(enc); err == nil {
		r.TreeHead.Size, r.TreeHead.RootHash, r.TreeHead.Time = h.Size, hex.EncodeToString(h.Root[:]), FormatTime(h.Time)
	}
}

func TestLogReceiptVerifies(t *testing.T) {
	f := newLogFixture(t)
	latest := f.signer.Head()
	cache := NewHeadCache(16)
	for i, st := range f.stamps {
		for _, rc := range []*Receipt{st.Receipt(), f.receiptIn(t, i, latest)} {
			parsed, err := ParseReceipt(rc.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Format != ReceiptFormatV2 || parsed.SignedData != "" || parsed.Signature != "" {
				t.Fatalf("v2 receipt has format %q and v1 fields", parsed.Format)
			}
			for _, c := range []*HeadCache{nil, cache} {
				got, err := parsed.VerifyCached(trustOf(t, f.dir), docHash(i), c)
				if err != nil {
					t.Fatalf("stamp %d in tree of size %d: %v", i, parsed.TreeHead.Size, err)
				}
				if got.Serial != uint64(i) || string(got.DocumentHash) != string(docHash(i)) {
					t.Fatalf("verified statement %+v", got)
				}
			}
			sth, err := parsed.TreeHeadOf()
			if err != nil || sth.Head.Size != parsed.TreeHead.Size {
				t.Fatalf("TreeHeadOf: %v", err)
			}
			if proof, err := parsed.ProofOf(); err != nil || len(proof) != len(parsed.InclusionProof) {
				t.Fatalf("ProofOf: %v", err)
			}
		}
	}
	// The proofs are not trivial: leaf 2 of 6 needs three hashes.
	if n := len(f.stamps[2].Proof); n != 3 {
		t.Fatalf("proof of leaf 2 in tree of size 6 has %d hashes, want 3", n)
	}
	// An other document's hash is refused.
	if _, err := f.stamps[1].Receipt().Verify(trustOf(t, f.dir), docHash(2)); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("other document: %v, want ErrHashMismatch", err)
	}
}

// Altering any byte of the leaf, a proof hash, the signed tree head or
// its signature makes verification fail with the matching sentinel.
func TestLogReceiptRefusesEveryAlteredByte(t *testing.T) {
	f := newLogFixture(t)
	server := entry(t, "server")
	good := f.stamps[2].Receipt() // leaf 2 of a tree of size 6: not the last
	if _, err := good.Verify(trustOf(t, f.dir), nil); err != nil {
		t.Fatal(err)
	}
	head := f.stamps[2].Head

	check := func(t *testing.T, what string, r *Receipt, want error) {
		t.Helper()
		_, err := r.Verify(trustOf(t, f.dir), nil)
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", what, err, want)
		}
	}

	t.Run("leaf", func(t *testing.T) {
		leaf := unb64(t, good.Leaf)
		for i := range leaf {
			bad := flip(leaf, i)
			// As it is: the readable fields no longer match (or it
			// does not parse).
			r := cloneReceipt(good)
			r.Leaf = b64(bad)
			check(t, "leaf byte "+strconv.Itoa(i), r, ErrMalformedReceipt)
			// With readable fields that agree with the altered leaf.
			st, err := ParseLeaf(bad)
			if err != nil {
				continue
			}
			setReadable(r, st)
			var want error
			switch {
			case st.ServerID != server.ID:
				want = ErrUntrustedSigner
			case st.ServerPeer != server.PeerID:
				want = ErrWrongServerKey
			case st.Time.After(head.Head.Time):
				want = ErrBadProof
			default:
				want = ErrBadProof
			}
			check(t, "consistent leaf byte "+strconv.Itoa(i), r, want)
		}
	})
	t.Run("proof", func(t *testing.T) {
		for j, h := range good.InclusionProof {
			raw, _ := hex.DecodeString(h)
			for k := range raw {
				r := cloneReceipt(good)
				r.InclusionProof[j] = hex.EncodeToString(flip(raw, k))
				check(t, "proof hash "+strconv.Itoa(j)+" byte "+strconv.Itoa(k), r, ErrBadProof)
			}
		}
		p := good.InclusionProof
		for _, c := range []struct {
			name  string
			proof []string
			want  error
		}{
			{"empty", nil, ErrBadProof},
			{"last hash dropped", p[:len(p)-1], ErrBadProof},
			{"hash added", append(append([]string{}, p...), p[0]), ErrBadProof},
			{"hashes swapped", []string{p[1], p[0], p[2]}, ErrBadProof},
			{"hash repeated", []string{p[0], p[0], p[2]}, ErrBadProof},
			{"not hex", []string{"zz" + p[0][2:], p[1], p[2]}, ErrMalformedReceipt},
			{"short hash", []string{p[0][2:], p[1], p[2]}, ErrMalformedReceipt},
			{"long hash", []string{p[0] + "00", p[1], p[2]}, ErrMalformedReceipt},
		} {
			r := cloneReceipt(good)
			r.InclusionProof = c.proof
			check(t, c.name, r, c.want)
		}
	})
	t.Run("tree head signed data", func(t *testing.T) {
		for i := range head.Encoded {
			bad := flip(head.Encoded, i)
			r := cloneReceipt(good)
			setHead(r, bad, head.Signature)
			h, err := ParseTreeHead(bad)
			var want error
			switch {
			case err != nil:
				want = ErrMalformedReceipt
			case h.ServerID != server.ID || h.ServerPeer != server.PeerID:
				want = ErrWrongServerKey
			default:
				want = ErrBadSignature
			}
			check(t, "signed_data byte "+strconv.Itoa(i), r, want)
		}
	})
	t.Run("tree head signature", func(t *testing.T) {
		for i := range head.Signature {
			r := cloneReceipt(good)
			r.TreeHead.Signature = b64(flip(head.Signature, i))
			check(t, "signature byte "+strconv.Itoa(i), r, ErrBadSignature)
		}
		for _, c := range []struct {
			name string
			sig  string
			want error
		}{
			{"truncated", b64(head.Signature[:len(head.Signature)-1]), ErrBadSignature},
			{"extended", b64(append(append([]byte{}, head.Signature...), 0)), ErrBadSignature},
			{"empty", "", ErrMalformedReceipt},
			{"not base64", "!!" + good.TreeHead.Signature[2:], ErrMalformedReceipt},
		} {
			r := cloneReceipt(good)
			r.TreeHead.Signature = c.sig
			check(t, c.name, r, c.want)
		}
	})
	t.Run("tree head readable fields", func(t *testing.T) {
		root := good.TreeHead.RootHash
		for i := range root {
			r := cloneReceipt(good)
			c := root[i] ^ 1
			r.TreeHead.RootHash = root[:i] + string(c) + root[i+1:]
			check(t, "root_hash char "+strconv.Itoa(i), r, ErrMalformedReceipt)
		}
		for _, c := range []struct {
			name string
			edit func(*ReceiptTreeHead)
		}{
			{"size+1", func(h *ReceiptTreeHead) { h.Size++ }},
			{"size-1", func(h *ReceiptTreeHead) { h.Size-- }},
			{"size 0", func(h *ReceiptTreeHead) { h.Size = 0 }},
			{"root uppercase", func(h *ReceiptTreeHead) { h.RootHash = strings.ToUpper(h.RootHash) }},
			{"root empty", func(h *ReceiptTreeHead) { h.RootHash = "" }},
			{"time", func(h *ReceiptTreeHead) { h.Time = FormatTime(head.Head.Time.Add(time.Second)) }},
			{"signed data empty", func(h *ReceiptTreeHead) { h.SignedData = "" }},
			{"signed data not base64", func(h *ReceiptTreeHead) { h.SignedData = "%" + h.SignedData }},
		} {
			r := cloneReceipt(good)
			c.edit(r.TreeHead)
			check(t, c.name, r, ErrMalformedReceipt)
		}
		r := cloneReceipt(good)
		r.TreeHead = nil
		check(t, "tree head missing", r, ErrMalformedReceipt)
		r = cloneReceipt(good)
		r.Format = ReceiptFormatV1
		check(t, "v2 receipt labelled v1", r, ErrMalformedReceipt)
		r = cloneReceipt(good)
		r.Leaf = ""
		check(t, "leaf missing", r, ErrMalformedReceipt)
	})
}

// Tree heads that are validly encoded but not the server's, or not the
// tree the proof is for, are refused.
func TestLogReceiptRefusesForeignHeads(t *testing.T) {
	f := newLogFixture(t)
	good := f.stamps[3].Receipt()
	head := f.stamps[3].Head.Head
	outsider := entry(t, "outsider")
	outsiderKey := testkeys.Private(t, "outsider")

	withHead := func(h *TreeHead, key *rsa.PrivateKey) *Receipt {
		enc := h.Encode()
		r := cloneReceipt(good)
		setHead(r, enc, signAs(t, identityOf(t, key), enc))
		return r
	}
	// A directory in which "server" has the outsider's key.
	wrongDir, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{"server": outsider.PublicKey, "1000": &testkeys.Private(t, "1000").PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	same := *head
	earlier := *head
	earlier.Time = f.stamps[3].Statement.Time.Add(-time.Nanosecond)
	ofOutsider := *head
	ofOutsider.ServerID, ofOutsider.ServerPeer = outsider.ID, outsider.PeerID
	ofOutsiderPeer := *head
	ofOutsiderPeer.ServerPeer = outsider.PeerID
	otherRoot := *head
	otherRoot.Root[0] ^= 1

	trust := trustOf(t, f.dir)
	for _, c := range []struct {
		name  string
		r     *Receipt
		trust *Trust
		want  error
	}{
		{"the same head signed by the wrong key", withHead(&same, outsiderKey), trust, ErrBadSignature},
		{"a forged root signed by the wrong key", withHead(&otherRoot, outsiderKey), trust, ErrBadSignature},
		{"head of another server, signed by it", withHead(&ofOutsider, outsiderKey), trust, ErrUntrustedSigner},
		{"head naming another server's peer", withHead(&ofOutsiderPeer, outsiderKey), trust, ErrWrongServerKey},
		{"the server's head of another tree", func() *Receipt {
			r := cloneReceipt(good)
			latest := f.signer.Head()
			setHead(r, latest.Encoded, latest.Signature)
			return r
		}(), trust, ErrBadProof},
		{"the server's head of another root", withHead(&otherRoot, testkeys.Private(t, "server")), trust, ErrBadProof},
		{"a head older than the stamp", withHead(&earlier, testkeys.Private(t, "server")), trust, ErrBadProof},
		{"a directory with another key for the server", good, trustOf(t, wrongDir), ErrWrongServerKey},
		{"only another authority trusted", good, trustOf(t, f.dir, "1000"), ErrUntrustedSigner},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.r.Verify(c.trust, nil); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := c.r.VerifyCached(c.trust, nil, NewHeadCache(4)); !errors.Is(err, c.want) {
				t.Fatalf("cached: got %v, want %v", err, c.want)
			}
		})
	}
}

// identityOf names a test key by its id, for signAs.
func identityOf(t testing.TB, key *rsa.PrivateKey) identity.ID {
	for _, id := range []identity.ID{"server", "outsider", "1000", "2000"} {
		if testkeys.Private(t, id).Equal(key) {
			return id
		}
	}
	t.Fatal("not a test key")
	return ""
}

// A cache that has seen a head does not let a bad signature or a bad
// proof through later, and a head that failed is not cached.
func TestHeadCacheDoesNotWeaken(t *testing.T) {
	f := newLogFixture(t)
	cache := NewHeadCache(1)
	good := f.stamps[2].Receipt()
	if _, err := good.VerifyCached(trustOf(t, f.dir), nil, cache); err != nil {
		t.Fatal(err)
	}
	badSig := cloneReceipt(good)
	badSig.TreeHead.Signature = b64(flip(f.stamps[2].Head.Signature, 7))
	badProof := cloneReceipt(good)
	badProof.InclusionProof[1] = strings.Repeat("00", tlog.HashSize)
	for range 2 {
		if _, err := badSig.VerifyCached(trustOf(t, f.dir), nil, cache); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("bad signature after a cached head: %v", err)
		}
		if _, err := badProof.VerifyCached(trustOf(t, f.dir), nil, cache); !errors.Is(err, ErrBadProof) {
			t.Fatalf("bad proof under a cached head: %v", err)
		}
	}
	// The cache is bounded and still correct when it starts over.
	for i, st := range f.stamps {
		if _, err := st.Receipt().VerifyCached(trustOf(t, f.dir), docHash(i), cache); err != nil {
			t.Fatal(err)
		}
	}
	if len(cache.checked) > 1 {
		t.Fatalf("cache of 1 holds %d heads", len(cache.checked))
	}
}

// v1 receipts (one signature per statement) still verify next to v2.
func TestV1ReceiptStillVerifies(t *testing.T) {
	f := newLogFixture(t)
	st := f.stamps[4].Statement
	v1 := NewReceipt(st, signAs(t, "server", st.Encode()))
	parsed, err := ParseReceipt(v1.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Format != ReceiptFormatV1 || parsed.TreeHead != nil || parsed.Leaf != "" {
		t.Fatalf("v1 receipt with v2 fields: %+v", parsed)
	}
	got, err := parsed.Verify(trustOf(t, f.dir), docHash(4))
	if err != nil || got.Serial != 4 {
		t.Fatalf("v1 receipt: %+v, %v", got, err)
	}
	// The leaf signature is not a statement signature: domain tags differ.
	leafSigned := NewReceipt(st, signAs(t, "server", st.EncodeLeaf()))
	if _, err := leafSigned.Verify(trustOf(t, f.dir), nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("v1 receipt with a signature over the leaf: %v", err)
	}
}
