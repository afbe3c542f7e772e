// Command docexample writes the worked example of docs/PROTOCOL.md: it
// gets the 12-byte document "hello world\n" stamped by the real server
// code (protocol.Stamper) with the TEST-ONLY keys of
// internal/testkeys/testdata, a fixed clock and a fixed nonce, then writes
//
//	docs/example/hello.txt          the document
//	docs/example/hello.txt.receipt  its receipt
//	docs/example/server.pem         the test server's public key
//
// and regenerates the text between the "BEGIN GENERATED EXAMPLE" and "END
// GENERATED EXAMPLE" markers of docs/PROTOCOL.md. RSASSA-PKCS1-v1_5 is
// deterministic, so every run writes the same bytes. Along the way it
// checks the specification against the code: the statement is re-encoded
// by hand from the rules in PROTOCOL.md, the peer ID is re-derived from
// the key, and the receipt is verified.
//
// Run from anywhere inside the module:
//
//	go run ./internal/docexample          # write the files
//	go run ./internal/docexample -check   # fail if any file is stale
//
// The keys are test-only: their passphrase is public. Never use them
// for anything else.
package main

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
	"tsnode/internal/testkeys"
	"tsnode/protocol"
)

// The fixed inputs of the example.
var (
	document  = []byte("hello world\n")
	stampTime = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)
	// nonce is 00 01 02 ... 1f: recognisable in a hex dump. A real
	// requester draws 32 random bytes per request.
	nonce = func() []byte {
		n := make([]byte, protocol.NonceSize)
		for i := range n {
			n[i] = byte(i)
		}
		return n
	}()
)

const (
	serverID    identity.ID = "server"
	requesterID identity.ID = "1000"

	// Record tags and sealing contexts of the stamp protocol, as
	// PROTOCOL.md spells them (the Go constants are unexported).
	stampRequestTag = "tsnode/stamp-request/v1"
	stampReplyTag   = "tsnode/stamp-reply/v1"

	beginMarker = "<!-- BEGIN GENERATED EXAMPLE: go run ./internal/docexample -->\n"
	endMarker   = "<!-- END GENERATED EXAMPLE -->\n"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("docexample: ")
	check := flag.Bool("check", false, "do not write: exit 1 if any generated file differs")
	flag.Parse()

	root, err := moduleRoot()
	if err != nil {
		log.Fatal(err)
	}
	files, err := generate(root)
	if err != nil {
		log.Fatal(err)
	}
	stale := false
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if *check {
			fmt.Fprintf(os.Stderr, "stale: %s\n", f.rel)
			stale = true
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("wrote %s\n", f.rel)
	}
	if stale {
		os.Exit(1)
	}
}

type file struct {
	rel, path string
	data      []byte
}

// moduleRoot walks up from the working directory to the go.mod of module
// tsnode.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module tsnode\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run inside the tsnode module")
		}
		dir = parent
	}
}

func generate(root string) ([]file, error) {
	testdata := filepath.Join(root, "internal", "testkeys", "testdata")
	dir, err := identity.LoadDirectory(testdata)
	if err != nil {
		return nil, err
	}
	serverKey, err := loadKey(testdata, serverID)
	if err != nil {
		return nil, err
	}
	requesterKey, err := loadKey(testdata, requesterID)
	if err != nil {
		return nil, err
	}
	server, err := dir.Lookup(serverID)
	if err != nil {
		return nil, err
	}
	requester, err := dir.Lookup(requesterID)
	if err != nil {
		return nil, err
	}
	docHash := sha256.Sum256(document)

	// The requester's side: the request record, sealed to the server.
	req := protocol.EncodeRecord(stampRequestTag, []byte(requesterID), []byte(protocol.HashAlgorithm), docHash[:], nonce)
	sealedReq, err := protocol.Seal(server.PublicKey, stampRequestTag, req)
	if err != nil {
		return nil, err
	}
	if len(sealedReq) != len(req)+protocol.SealOverhead || sealedReq[0] != 1 {
		return nil, fmt.Errorf("sealed request layout differs from the specification")
	}

	// The server's side, as the stamp handler runs it for a stream from
	// the requester's authenticated peer ID.
	stamper := protocol.NewStamper(serverKey, server, dir, func() time.Time { return stampTime })
	sealedReply, _, err := stamper.Handle(requester.PeerID, sealedReq)
	if err != nil {
		return nil, fmt.Errorf("server refused the example request: %w", err)
	}

	// Back at the requester: open the reply and check it.
	plain, err := protocol.Open(requesterKey, stampReplyTag, sealedReply)
	if err != nil {
		return nil, err
	}
	f, err := protocol.DecodeRecord(plain, stampReplyTag, 2)
	if err != nil {
		return nil, err
	}
	signed, sig := f[0], f[1]
	st, err := protocol.ParseStatement(signed)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(st.DocumentHash, docHash[:]) || !bytes.Equal(st.Nonce, nonce) ||
		st.RequesterID != requesterID || st.RequesterPeer != requester.PeerID ||
		st.ServerID != serverID || st.ServerPeer != server.PeerID {
		return nil, errors.New("reply does not match the request")
	}

	// The statement, encoded by hand from the specification, must be
	// exactly what the server signed.
	fields := statementFields(st)
	var byHand []byte
	for _, fl := range fields {
		byHand = binary.BigEndian.AppendUint32(byHand, uint32(len(fl.value)))
		byHand = append(byHand, fl.value...)
	}
	if !bytes.Equal(byHand, signed) {
		return nil, errors.New("the specification's statement encoding differs from the server's")
	}
	if err := protocol.VerifySignature(server.PublicKey, signed, sig); err != nil {
		return nil, err
	}
	if again, err := protocol.Sign(serverKey, signed); err != nil || !bytes.Equal(again, sig) {
		return nil, errors.New("signature is not reproducible")
	}

	receipt := protocol.NewReceipt(st, sig)
	receiptJSON := receipt.Marshal()
	parsed, err := protocol.ParseReceipt(receiptJSON)
	if err != nil {
		return nil, err
	}
	if _, err := parsed.Verify(dir, docHash[:]); err != nil {
		return nil, err
	}

	pid, err := peerIDByHand(server.PublicKey)
	if err != nil {
		return nil, err
	}
	if pid.mh != string(server.PeerID) {
		return nil, errors.New("the specification's peer ID derivation differs from go-libp2p's")
	}

	serverPEM, err := os.ReadFile(identity.PublicKeyPath(testdata, serverID))
	if err != nil {
		return nil, err
	}
	docPath := filepath.Join(root, "docs", "PROTOCOL.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return nil, err
	}
	section := exampleSection(docHash[:], fields, signed, sig, receiptJSON, server, pid)
	newDoc, err := replaceSection(doc, section)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", docPath, err)
	}

	ex := filepath.Join(root, "docs", "example")
	return []file{
		{"docs/example/hello.txt", filepath.Join(ex, "hello.txt"), document},
		{"docs/example/hello.txt.receipt", filepath.Join(ex, "hello.txt.receipt"), receiptJSON},
		{"docs/example/server.pem", filepath.Join(ex, "server.pem"), serverPEM},
		{"docs/PROTOCOL.md", docPath, newDoc},
	}, nil
}

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

// statementFields lists the statement's fields as PROTOCOL.md §5 defines
// them, tag first.
func statementFields(st *protocol.Statement) []field {
	serial := binary.BigEndian.AppendUint64(nil, st.Serial)
	return []field{
		{"tag", []byte(protocol.StatementTag), true, ""},
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

func exampleSection(docHash []byte, fields []field, signed, sig, receiptJSON []byte, server identity.Entry, pid peerIDDerivation) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("Document `docs/example/hello.txt`: the 12 bytes `hello world\\n`.\n\n")
	p("```\n%s\n```\n\n", hexLines(document, 0, ""))
	p("Document hash (SHA-256, lowercase hex):\n\n```\n%x\n```\n\n", docHash)
	p("Statement: %d bytes. Each line shows the byte offset (decimal), up to 16 bytes in hex, and what they are.\n", len(signed))
	p("Every field is a 4-byte big-endian length followed by that many bytes.\n\n")
	p("```\n")
	off := 0
	for i, fl := range fields {
		var lenBytes [4]byte
		binary.BigEndian.PutUint32(lenBytes[:], uint32(len(fl.value)))
		p("%s\n", hexLine(lenBytes[:], off, fmt.Sprintf("field %d (%s): length %d", i, fl.name, len(fl.value))))
		off += 4
		note := fl.note
		if fl.text {
			note = fmt.Sprintf("%q", fl.value)
		}
		p("%s\n", hexLines(fl.value, off, note))
		off += len(fl.value)
	}
	p("```\n\n")
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
