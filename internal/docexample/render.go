package main

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// The parts of the generated example: field dumps, hex lines and the
// text of §12.

func loadKey(testdata string, id identity.ID) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(identity.PrivateKeyPath(testdata, id))
	if err != nil {
		return nil, err
	}
	return identity.ParsePrivateKey(string(id), b, []byte(testkeys.Passphrase))
}

type field struct {
	name  string
	value []byte
	text  bool // printable ASCII, shown as a string
	note  string
}

// statementFields lists the statement's fields as PROTOCOL.md §4 defines
// them, tag first.
func statementFields(st *protocol.Statement) []field {
	return recordFields(st, protocol.StatementTag)
}

// leafFields lists a log leaf's fields (§4.3), tag first.
func leafFields(st *protocol.Statement) []field {
	return recordFields(st, protocol.LeafTag)
}

func recordFields(st *protocol.Statement, tag string) []field {
	serial := binary.BigEndian.AppendUint64(nil, st.Serial)
	return []field{
		{"tag", []byte(tag), true, ""},
		{"hash_algorithm", []byte(st.HashAlgorithm), true, ""},
		{"document_hash", st.DocumentHash, false, "SHA-256 of the document"},
		{"time", []byte(protocol.FormatTime(st.Time)), true, ""},
		{"serial", serial, false, fmt.Sprintf("u64 big-endian = %d", st.Serial)},
		{"requester_id", []byte(st.RequesterID), true, ""},
		{"requester_peer_id", []byte(st.RequesterPeer.String()), true, ""},
		{"server_id", []byte(st.ServerID), true, ""},
		{"server_peer_id", []byte(st.ServerPeer.String()), true, ""},
		{"nonce", st.Nonce, false, "requester's nonce"},
	}
}

type peerIDDerivation struct {
	der  []byte // SubjectPublicKeyInfo DER
	pb   []byte // libp2p PublicKey protobuf
	mh   string // multihash bytes
	text string // base58btc
}

// peerIDByHand derives a peer ID as PROTOCOL.md §1.4 says.
func peerIDByHand(pub *rsa.PublicKey) (peerIDDerivation, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return peerIDDerivation{}, err
	}
	pb := []byte{0x08, 0x00, 0x12} // field 1 (Type) = 0 (RSA); field 2 (Data), bytes
	pb = binary.AppendUvarint(pb, uint64(len(der)))
	pb = append(pb, der...)
	sum := sha256.Sum256(pb)
	mh := append([]byte{0x12, 0x20}, sum[:]...) // sha2-256, 32 bytes
	id, err := peer.IDFromBytes(mh)
	if err != nil {
		return peerIDDerivation{}, err
	}
	return peerIDDerivation{der: der, pb: pb, mh: string(mh), text: id.String()}, nil
}

func exampleSection(docHash []byte, fields []field, signed, sig, receiptJSON []byte, server identity.Entry, pid peerIDDerivation, wire string) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("### 12.1 A one-shot stamp and its v1 receipt\n\n")
	p("The server's clock reads %s; the requester's nonce is the bytes 00 to 1f. ", protocol.FormatTime(stampTime))
	p("The stamp comes from the server's one-shot code on a fresh log, so it is leaf 0 of that log and its serial is 0 (§4.1).\n\n")
	p("Document `docs/example/hello.txt`: the 12 bytes `hello world\\n`.\n\n")
	p("```\n%s\n```\n\n", hexLines(document, 0, ""))
	p("Document hash (SHA-256, lowercase hex):\n\n```\n%x\n```\n\n", docHash)
	p("Statement: %d bytes. Each line shows the byte offset (decimal), up to 16 bytes in hex, and what they are.\n", len(signed))
	p("Every field is a 4-byte big-endian length followed by that many bytes.\n\n")
	p("```\n%s```\n\n", fieldDump(fields))
	hashOff := 4 + len(protocol.StatementTag) + 4 + len(protocol.HashAlgorithm) + 4
	p("The document hash always starts at byte offset %d (0x%x) of the statement: 4 + %d (tag) + 4 + %d (`sha-256`) + 4.\n",
		hashOff, hashOff, len(protocol.StatementTag), len(protocol.HashAlgorithm))
	nonceOff := len(signed) - protocol.NonceSize
	p("The nonce is always the last %d bytes (here offset %d, after a length prefix `00 00 00 20`).\n\n", protocol.NonceSize, nonceOff)

	p("`signed_data` (base64 of the statement, standard alphabet, padded):\n\n```\n%s\n```\n\n", wrap(base64.StdEncoding.EncodeToString(signed), 76))
	p("Signature: RSASSA-PKCS1-v1_5 with SHA-256 over those %d bytes with the test server key (%d bytes; deterministic, so this run reproduces it).\n", len(signed), len(sig))
	digest := sha256.Sum256(signed)
	p("SHA-256 of the statement, the digest that is signed:\n\n```\n%x\n```\n\n", digest)
	p("`signature` (base64):\n\n```\n%s\n```\n\n", wrap(base64.StdEncoding.EncodeToString(sig), 76))
	p("Receipt `docs/example/hello.txt.receipt` (%d bytes: the JSON object indented by two spaces, keys in this order, then a newline):\n\n", len(receiptJSON))
	p("```json\n%s```\n\n", receiptJSON)

	p("%s\n", wire)
	p("### 12.2 The server's peer ID\n\n")
	p("Peer ID of the test server key (`docs/example/server.pem`), derived as in §1.4:\n\n")
	p("| Step | Value |\n|---|---|\n")
	p("| SubjectPublicKeyInfo DER | %d bytes, SHA-256 `%x` |\n", len(pid.der), sha256.Sum256(pid.der))
	p("| protobuf prefix | `%s` (then the %d DER bytes; %d bytes in all) |\n", spaced(pid.pb[:len(pid.pb)-len(pid.der)]), len(pid.der), len(pid.pb))
	p("| SHA-256 of the protobuf | `%x` |\n", pid.mh[2:])
	p("| multihash | `12 20` then that digest |\n")
	p("| peer ID (base58btc of the multihash) | `%s` |\n", pid.text)
	if pid.text != server.PeerID.String() {
		panic("peer ID mismatch")
	}
	return b.String()
}

// fieldDump shows a record field by field: offset, hex, meaning.
func fieldDump(fields []field) string {
	var b strings.Builder
	off := 0
	for i, fl := range fields {
		var lenBytes [4]byte
		binary.BigEndian.PutUint32(lenBytes[:], uint32(len(fl.value)))
		fmt.Fprintf(&b, "%s\n", hexLine(lenBytes[:], off, fmt.Sprintf("field %d (%s): length %d", i, fl.name, len(fl.value))))
		off += 4
		note := fl.note
		if fl.text {
			note = fmt.Sprintf("%q", fl.value)
		}
		fmt.Fprintf(&b, "%s\n", hexLines(fl.value, off, note))
		off += len(fl.value)
	}
	return b.String()
}

func hexLine(b []byte, off int, note string) string {
	s := fmt.Sprintf("%5d  %-47s", off, spaced(b))
	if note != "" {
		s += "  " + note
	}
	return strings.TrimRight(s, " ")
}

func hexLines(b []byte, off int, note string) string {
	var lines []string
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		n := ""
		if i == 0 {
			n = note
		}
		lines = append(lines, hexLine(b[i:end], off+i, n))
	}
	return strings.Join(lines, "\n")
}

func spaced(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, " ")
}

func wrap(s string, n int) string {
	var lines []string
	for len(s) > n {
		lines = append(lines, s[:n])
		s = s[n:]
	}
	return strings.Join(append(lines, s), "\n")
}

// replaceSection puts section between the markers of doc.
func replaceSection(doc []byte, section string) ([]byte, error) {
	s := string(doc)
	i := strings.Index(s, beginMarker)
	j := strings.Index(s, endMarker)
	if i < 0 || j < i {
		return nil, errors.New("no generated-example markers")
	}
	return []byte(s[:i+len(beginMarker)] + "\n" + section + "\n" + s[j:]), nil
}

// logSection describes the v2 example: the log, the leaf, the tree head,
// the inclusion proof checked by hand, the receipt and the consistency
// proof.
func logSection(ex *logExample, receiptJSON, consistencyJSON []byte) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	st := ex.stamps[exampleIndex]
	leaf := st.Statement.EncodeLeaf()
	head := st.Head

	p("### 12.3 A log of seven stamps\n\n")
	p("The requester `1000` gets seven documents stamped by the server's log signer (`authority.Authority`) ")
	p("in three batches of %d, %d and %d stamps. ", batchSizes[0], batchSizes[1], batchSizes[2])
	p("Each batch shares one time and gets one signed tree head. Leaf %d is `docs/example/hello.txt` with the nonce 00 to 1f; ", exampleIndex)
	p("leaf i ≠ %d is the document `document i\\n` with a nonce of 32 bytes 0xa0+i.\n\n", exampleIndex)
	p("| serial | batch | time | document | leaf hash = SHA-256(00 ‖ leaf) |\n|---|---|---|---|---|\n")
	batch, end := 0, batchSizes[0]
	for i, s := range ex.stamps {
		if i == end {
			batch++
			end += batchSizes[batch]
		}
		lh := leafHash(s.Statement.EncodeLeaf())
		p("| %d | %d | %s | `%s` | `%x` |\n", i, batch+1, protocol.FormatTime(s.Statement.Time),
			strings.ReplaceAll(string(logDocument(i)), "\n", "\\n"), lh)
	}
	p("\nSigned tree heads:\n\n| batch | size | time | root hash |\n|---|---|---|---|\n")
	for i, h := range ex.heads {
		p("| %d | %d | %s | `%x` |\n", i+1, h.Head.Size, protocol.FormatTime(h.Head.Time), h.Head.Root[:])
	}

	p("\nLeaf %d (the leaf of `hello.txt`), %d bytes: the statement of §12.1 with the leaf tag, this stamp's time and serial.\n\n", exampleIndex, len(leaf))
	p("```\n%s```\n\n", fieldDump(leafFields(st.Statement)))
	p("Its document hash is at offset %d (one more than in a statement: the leaf tag is one byte longer), its serial at offset %d.\n\n",
		4+len(protocol.LeafTag)+4+len(protocol.HashAlgorithm)+4, 4+len(protocol.LeafTag)+4+len(protocol.HashAlgorithm)+4+protocol.HashSize+4+len(protocol.TimeLayout)+4)

	var lh []hash
	for _, s := range ex.stamps {
		lh = append(lh, leafHash(s.Statement.EncodeLeaf()))
	}
	p("The tree of size 7 (§5.1: split at the largest power of two below the size):\n\n")
	p("```\n")
	p("                 root = N(A, B)\n")
	p("              /                 \\\n")
	p("       A = N(C, D)            B = N(E, L6)\n")
	p("       /        \\             /       \\\n")
	p("  C = N(L0,L1) D = N(L2,L3) E = N(L4,L5)   L6\n")
	p("```\n\n")
	p("N(x, y) is SHA-256(01 ‖ x ‖ y); Li is the leaf hash of leaf i.\n\n")
	p("| node | leaves | hash |\n|---|---|---|\n")
	for _, n := range []struct {
		name   string
		lo, hi int
	}{{"C", 0, 2}, {"D", 2, 4}, {"A", 0, 4}, {"E", 4, 6}, {"B", 4, 7}, {"root", 0, 7}} {
		p("| %s | %d to %d | `%x` |\n", n.name, n.lo, n.hi-1, treeHash(lh, n.lo, n.hi))
	}

	p("\nTree head of size %d, %d bytes:\n\n", head.Head.Size, len(head.Encoded))
	p("```\n%s```\n\n", fieldDump(treeHeadFields(head.Head)))
	p("Its root hash is the 32 bytes that end 34 bytes before the end (offset %d), its size the 8 bytes before that (offset %d).\n", len(head.Encoded)-66, len(head.Encoded)-78)
	p("SHA-256 of the tree head, the digest that is signed:\n\n```\n%x\n```\n\n", sha256.Sum256(head.Encoded))
	p("Tree head signature (base64):\n\n```\n%s\n```\n\n", wrap(base64.StdEncoding.EncodeToString(head.Signature), 76))

	p("### 12.4 Checking the inclusion proof by hand\n\n")
	p("The receipt's inclusion proof for leaf %d in the tree of size %d has %d hashes:\n\n", exampleIndex, head.Head.Size, len(st.Proof))
	names := map[hash]string{}
	for _, n := range []struct {
		name   string
		lo, hi int
	}{{"C", 0, 2}, {"D", 2, 4}, {"A", 0, 4}, {"E", 4, 6}, {"B", 4, 7}} {
		names[treeHash(lh, n.lo, n.hi)] = n.name
	}
	for i, h := range lh {
		names[h] = fmt.Sprintf("L%d", i)
	}
	p("| # | hash | node |\n|---|---|---|\n")
	for i, h := range st.Proof {
		p("| %d | `%x` | %s |\n", i+1, h[:], names[hash(h)])
	}
	steps, r, err := checkInclusion(leaf, st.Statement.Serial, head.Head.Size, head.Head.Root, hashes(st.Proof))
	if err != nil {
		panic(err) // checked in generate
	}
	p("\nThe algorithm of §5.3 starts with fn = %d (the serial), sn = %d (size − 1) and r = L%d = `%x`.\n\n", exampleIndex, head.Head.Size-1, exampleIndex, leafHash(leaf))
	p("| # | fn, sn | rule | r becomes | then fn, sn |\n|---|---|---|---|---|\n")
	for i, s := range steps {
		rule := "fn even, fn ≠ sn: r = N(r, p)"
		if s.left {
			if s.fn&1 == 1 {
				rule = "fn odd: r = N(p, r)"
			} else {
				rule = fmt.Sprintf("fn = sn: r = N(p, r), then shift %d more time(s)", s.shiftedPre)
			}
		}
		p("| %d | %d, %d | %s | `%x` | %d, %d |\n", i+1, s.fn, s.sn, rule, s.r, s.fnAfter, s.snAfter)
	}
	p("\nAt the end sn = 0 and r = `%x`, the signed root: leaf %d is in the tree.\n\n", r, exampleIndex)

	p("### 12.5 The v2 receipt\n\n")
	p("Receipt `docs/example/hello.txt.v2.receipt` (%d bytes):\n\n", len(receiptJSON))
	p("```json\n%s```\n\n", receiptJSON)

	old, nw := ex.heads[1].Head, ex.heads[2].Head
	p("### 12.6 A consistency proof\n\n")
	p("`docs/example/consistency.json` proves that the log of size %d (after batch 3) extends the log of size %d (after batch 2), ", nw.Size, old.Size)
	p("as `tsnode log --from R1 --out` writes it (§8.4). `tsnode verify --keys internal/testkeys/testdata --consistency docs/example/consistency.json` accepts it.\n\n")
	proof, _ := (&protocol.Receipt{InclusionProof: ex.consistency.Proof}).ProofOf()
	p("| # | hash | node |\n|---|---|---|\n")
	for i, h := range proof {
		p("| %d | `%x` | %s |\n", i+1, h[:], names[hash(h)])
	}
	start, csteps, err := checkConsistency(old.Size, nw.Size, old.Root, nw.Root, hashes(proof))
	if err != nil {
		panic(err) // checked in generate
	}
	if start.prependedFH {
		p("\nThe old size %d is a power of two, so the old root is put in front of the proof. ", old.Size)
	} else {
		p("\nThe old size %d is not a power of two, so the proof is used as it is. ", old.Size)
	}
	p("The algorithm of §5.4 starts with fn = %d − 1 and sn = %d − 1, shifted right %d time(s) while fn is odd: fn = %d, sn = %d; ", old.Size, nw.Size, start.shiftedPre, start.fn, start.sn)
	p("fr = sr = the first hash, `%x`.\n\n", start.fr)
	p("| # | fn, sn | rule | fr becomes | sr becomes | then fn, sn |\n|---|---|---|---|---|---|\n")
	for i, s := range csteps {
		rule := "fn even, fn ≠ sn: sr = N(sr, c)"
		if s.both {
			if s.fn&1 == 1 {
				rule = "fn odd: fr = N(c, fr), sr = N(c, sr)"
			} else {
				rule = fmt.Sprintf("fn = sn: fr = N(c, fr), sr = N(c, sr), then shift %d more time(s)", s.shiftedPre)
			}
		}
		p("| %d | %d, %d | %s | `%x` | `%x` | %d, %d |\n", i+2, s.fn, s.sn, rule, s.fr, s.sr, s.fnAfter, s.snAfter)
	}
	p("\nAt the end sn = 0, fr is the old root `%x` and sr the new root `%x`.\n\n", old.Root[:], nw.Root[:])
	p("```json\n%s```\n", consistencyJSON)
	return b.String()
}

// treeHeadFields lists a tree head's fields (§5.2), tag first.
func treeHeadFields(h *protocol.TreeHead) []field {
	return []field{
		{"tag", []byte(protocol.TreeHeadTag), true, ""},
		{"server_id", []byte(h.ServerID), true, ""},
		{"server_peer_id", []byte(h.ServerPeer.String()), true, ""},
		{"size", binary.BigEndian.AppendUint64(nil, h.Size), false, fmt.Sprintf("u64 big-endian = %d", h.Size)},
		{"root_hash", h.Root[:], false, "root of the tree of that size"},
		{"time", []byte(protocol.FormatTime(h.Time)), true, ""},
	}
}

// wireSection shows the one-shot exchange of §6 for the example: the
// request record byte by byte, and the sizes of what is sealed around it
// (sealing is randomized, so its bytes differ on every run).
func wireSection(req, sealedReq, reply []byte) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	f, err := parseRecord(req)
	if err != nil || len(f) != 5 {
		panic("request record")
	}
	p("#### The one-shot exchange (§6) that produced it\n\n")
	p("The request record (§6.2), %d bytes:\n\n", len(req))
	p("```\n%s```\n\n", fieldDump([]field{
		{"tag", f[0], true, ""},
		{"requester_id", f[1], true, ""},
		{"hash_algorithm", f[2], true, ""},
		{"document_hash", f[3], false, "SHA-256 of the document"},
		{"nonce", f[4], false, "requester's nonce"},
	}))
	var lenPrefix []byte
	lenPrefix = binary.AppendUvarint(lenPrefix, uint64(len(sealedReq)))
	p("Sealed to the server's key (§3) it is %d bytes: `01`, the 512-byte wrapped key, the 12-byte nonce, and %d + 16 bytes of ciphertext and tag. ", len(sealedReq), len(req))
	p("The request frame is `%s` (the varint %d) followed by those bytes.\n\n", spaced(lenPrefix), len(sealedReq))
	resp := protocol.SealOverhead + len(reply)
	p("The server's reply record (`tsnode/stamp-reply/v1`, the statement and the signature) is %d bytes, sealed to the requester %d; ", len(reply), resp)
	p("the response record around it (§6.4: tag, `ok`, sealed reply) is %d bytes.\n", 4+len("tsnode/stamp-response/v1")+4+len(protocol.StatusOK)+4+resp)
	return b.String()
}
