// Command docexample writes the worked example of docs/PROTOCOL.md. With
// the TEST-ONLY keys of internal/testkeys/testdata, fixed clocks and fixed
// nonces, it gets the 12-byte document "hello world\n" stamped by the real
// server code twice: once one-shot (stamp.Stamper, a v1 receipt), and
// once as leaf 5 of a seven-leaf Merkle log written by authority.Authority
// in three batches (a v2 receipt). A minute later the authority signs a
// fresh head of that tree, which the witnesses 3000 and 3001 cosign (a
// v3 receipt). Last, the TEST-ONLY online key testkeys.OnlineKey("server")
// signs the v2 receipt's tree head, under a delegation by the server's
// identity key (PROTOCOL.md §5.6). It then writes
//
//	docs/example/hello.txt                 the document
//	docs/example/hello.txt.receipt         its v1 receipt
//	docs/example/hello.txt.v2.receipt      its v2 receipt
//	docs/example/hello.txt.v3.receipt      its v3 (witnessed) receipt
//	docs/example/hello.txt.online.receipt  its v2 receipt, the head signed
//	                                       by the online key
//	docs/example/consistency.json      the proof that the log of size 7
//	                                   extends the log of size 3
//	docs/example/server.pem            the test server's public key
//	docs/example/3000.pem, 3001.pem    the test witnesses' public keys
//
// and regenerates the text between the "BEGIN GENERATED EXAMPLE" and "END
// GENERATED EXAMPLE" markers of docs/PROTOCOL.md. RSASSA-PKCS1-v1_5 is
// deterministic, and so is ECDSA with RFC 6979, so every run writes the
// same bytes. Along the way it
// checks the specification against the code: the statement is re-encoded
// by hand from the rules in PROTOCOL.md, the peer ID is re-derived from
// the key, the tree hashes and both proofs are recomputed with the
// algorithms of PROTOCOL.md §5, and the receipts (the v3 one with 2 of the
// witnesses 3000 and 3001 required) and the consistency proof are
// verified.
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
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
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
	if *check {
		stale, err := staleFiles(root)
		if err != nil {
			log.Fatal(err)
		}
		for _, rel := range stale {
			fmt.Fprintf(os.Stderr, "stale: %s (run go run ./internal/docexample)\n", rel)
		}
		if len(stale) > 0 {
			os.Exit(1)
		}
		return
	}
	if err := writeFiles(root, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// staleFiles returns the generated files (module-relative paths) whose
// content on disk differs from what generate makes, or that are missing.
// It is what -check runs.
func staleFiles(root string) ([]string, error) {
	files, err := generate(root)
	if err != nil {
		return nil, err
	}
	var stale []string
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err != nil || !bytes.Equal(old, f.data) {
			stale = append(stale, f.rel)
		}
	}
	return stale, nil
}

// writeFiles writes every generated file that differs and names it on out.
func writeFiles(root string, out io.Writer) error {
	files, err := generate(root)
	if err != nil {
		return err
	}
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err == nil && bytes.Equal(old, f.data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", f.rel)
	}
	return nil
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
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/tsnode/tsnode\n")) {
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
	trust, err := protocol.NewTrust(dir, nil, serverID)
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

	// The server's side, as the one-shot handler runs it for a stream
	// from the requester's authenticated peer ID: the authority on a
	// fresh log, whose clock reads stampTime.
	logDir, err := os.MkdirTemp("", "tsnode-docexample-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(logDir)
	lg, err := merklelog.Create(logDir)
	if err != nil {
		return nil, err
	}
	defer lg.Close()
	auth, err := authority.New(lg, serverKey, server, authority.WithClock(func() time.Time { return stampTime }), authority.WithOnlineKeyLifetime(0))
	if err != nil {
		return nil, err
	}
	defer auth.Close()
	stamper, err := stamp.NewStamper(serverKey, server, dir, auth)
	if err != nil {
		return nil, err
	}
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
	if _, err := parsed.Verify(trust, docHash[:]); err != nil {
		return nil, err
	}

	pid, err := peerIDByHand(server.PublicKey)
	if err != nil {
		return nil, err
	}
	if pid.mh != string(server.PeerID) {
		return nil, errors.New("the specification's peer ID derivation differs from go-libp2p's")
	}

	// The v2 example: the same document as leaf 5 of a seven-leaf log.
	lex, err := buildLog(serverKey, server, requester)
	if err != nil {
		return nil, fmt.Errorf("log example: %w", err)
	}
	if err := checkLogExample(lex, trust); err != nil {
		return nil, fmt.Errorf("log example: %w", err)
	}
	receiptV2 := lex.stamps[exampleIndex].Receipt().Marshal()
	parsedV2, err := protocol.ParseReceipt(receiptV2)
	if err != nil {
		return nil, err
	}
	if _, err := parsedV2.Verify(trust, docHash[:]); err != nil {
		return nil, fmt.Errorf("v2 example receipt: %w", err)
	}
	wex, err := buildWitnessed(testdata, dir, trust, lex, parsedV2, docHash[:])
	if err != nil {
		return nil, fmt.Errorf("witness example: %w", err)
	}
	oex, err := buildOnline(serverKey, server, trust, lex, docHash[:])
	if err != nil {
		return nil, fmt.Errorf("online key example: %w", err)
	}
	online, err := onlineSection(oex)
	if err != nil {
		return nil, fmt.Errorf("online key example: %w", err)
	}
	consistencyJSON, err := json.MarshalIndent(lex.consistency, "", "  ")
	if err != nil {
		return nil, err
	}
	consistencyJSON = append(consistencyJSON, '\n')

	serverPEM, err := os.ReadFile(identity.PublicKeyPath(testdata, serverID))
	if err != nil {
		return nil, err
	}
	var witnessPEMs [][]byte
	for _, id := range witnessIDs {
		b, err := os.ReadFile(identity.PublicKeyPath(testdata, id))
		if err != nil {
			return nil, err
		}
		witnessPEMs = append(witnessPEMs, b)
	}
	docPath := filepath.Join(root, "docs", "PROTOCOL.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return nil, err
	}
	reply := protocol.EncodeRecord(stampReplyTag, signed, sig)
	wire := wireSection(req, sealedReq, reply)
	section := exampleSection(docHash[:], fields, signed, sig, receiptJSON, server, pid, wire) +
		"\n" + logSection(lex, receiptV2, consistencyJSON) + "\n" + witnessSection(lex, wex) + "\n" + online
	newDoc, err := replaceSection(doc, section)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", docPath, err)
	}

	ex := filepath.Join(root, "docs", "example")
	files := []file{
		{"docs/example/hello.txt", filepath.Join(ex, "hello.txt"), document},
		{"docs/example/hello.txt.receipt", filepath.Join(ex, "hello.txt.receipt"), receiptJSON},
		{"docs/example/hello.txt.v2.receipt", filepath.Join(ex, "hello.txt.v2.receipt"), receiptV2},
		{"docs/example/hello.txt.v3.receipt", filepath.Join(ex, "hello.txt.v3.receipt"), wex.receipt},
		{"docs/example/hello.txt.online.receipt", filepath.Join(ex, "hello.txt.online.receipt"), oex.receipt},
		{"docs/example/consistency.json", filepath.Join(ex, "consistency.json"), consistencyJSON},
		{"docs/example/server.pem", filepath.Join(ex, "server.pem"), serverPEM},
	}
	for i, id := range witnessIDs {
		name := string(id) + ".pem"
		files = append(files, file{"docs/example/" + name, filepath.Join(ex, name), witnessPEMs[i]})
	}
	return append(files, file{"docs/PROTOCOL.md", docPath, newDoc}), nil
}
