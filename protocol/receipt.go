package protocol

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"tsnode/identity"
)

// ReceiptFormatV1 marks a receipt whose statement the server signed
// directly.
const ReceiptFormatV1 = "tsnode-receipt-v1"

// MaxReceiptSize bounds a receipt file or relayed receipt.
const MaxReceiptSize = 64 << 10

// Receipt is the self-contained proof a requester keeps. The readable
// fields repeat what SignedData encodes; verification requires that they
// agree, and the signature covers SignedData byte for byte.
type Receipt struct {
	Format        string `json:"format"`
	HashAlgorithm string `json:"hash_algorithm"`
	DocumentHash  string `json:"document_hash"` // lowercase hex
	Time          string `json:"time"`
	Serial        uint64 `json:"serial"`
	RequesterID   string `json:"requester_id"`
	RequesterPeer string `json:"requester_peer_id"`
	ServerID      string `json:"server_id"`
	ServerPeer    string `json:"server_peer_id"`
	Nonce         string `json:"nonce"`       // lowercase hex
	SignedData    string `json:"signed_data"` // base64 of Statement.Encode()
	Signature     string `json:"signature"`   // base64, RSASSA-PKCS1-v1_5 SHA-256
}

// NewReceipt builds the receipt for a signed statement.
func NewReceipt(s *Statement, sig []byte) *Receipt {
	return &Receipt{
		Format:        ReceiptFormatV1,
		HashAlgorithm: s.HashAlgorithm,
		DocumentHash:  hex.EncodeToString(s.DocumentHash),
		Time:          FormatTime(s.Time),
		Serial:        s.Serial,
		RequesterID:   string(s.RequesterID),
		RequesterPeer: s.RequesterPeer.String(),
		ServerID:      string(s.ServerID),
		ServerPeer:    s.ServerPeer.String(),
		Nonce:         hex.EncodeToString(s.Nonce),
		SignedData:    base64.StdEncoding.EncodeToString(s.Encode()),
		Signature:     base64.StdEncoding.EncodeToString(sig),
	}
}

// Marshal encodes the receipt as indented JSON.
func (r *Receipt) Marshal() []byte {
	b, _ := json.MarshalIndent(r, "", "  ") // cannot fail: strings and a number
	return append(b, '\n')
}

// ParseReceipt decodes receipt JSON, refusing unknown fields.
func ParseReceipt(b []byte) (*Receipt, error) {
	if len(b) > MaxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrMalformedReceipt, len(b), MaxReceiptSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Receipt
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedReceipt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformedReceipt)
	}
	return &r, nil
}

// ReadReceiptFile reads and parses a receipt file.
func ReadReceiptFile(path string) (*Receipt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read receipt: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxReceiptSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read receipt %s: %w", path, err)
	}
	r, err := ParseReceipt(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Statement decodes the signed data and checks that every readable field
// agrees with it.
func (r *Receipt) Statement() (*Statement, []byte, error) {
	if r.Format != ReceiptFormatV1 {
		return nil, nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedReceipt, r.Format, ReceiptFormatV1)
	}
	signed, err := base64.StdEncoding.DecodeString(r.SignedData)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signed_data is not base64", ErrMalformedReceipt)
	}
	s, err := ParseStatement(signed)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signed_data: %v", ErrMalformedReceipt, err)
	}
	want := NewReceipt(s, nil)
	for _, c := range []struct{ name, got, want string }{
		{"hash_algorithm", r.HashAlgorithm, want.HashAlgorithm},
		{"document_hash", r.DocumentHash, want.DocumentHash},
		{"time", r.Time, want.Time},
		{"serial", fmt.Sprint(r.Serial), fmt.Sprint(want.Serial)},
		{"requester_id", r.RequesterID, want.RequesterID},
		{"requester_peer_id", r.RequesterPeer, want.RequesterPeer},
		{"server_id", r.ServerID, want.ServerID},
		{"server_peer_id", r.ServerPeer, want.ServerPeer},
		{"nonce", r.Nonce, want.Nonce},
	} {
		if c.got != c.want {
			return nil, nil, fmt.Errorf("%w: field %s (%q) does not match the signed data (%q)", ErrMalformedReceipt, c.name, c.got, c.want)
		}
	}
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature is not base64", ErrMalformedReceipt)
	}
	return s, sig, nil
}

// Verify checks the receipt offline: well-formed, signed by the key the
// directory holds for its server, and (if documentHash is not nil) about
// that document. The error names the first check that failed.
func (r *Receipt) Verify(dir *identity.Directory, documentHash []byte) (*Statement, error) {
	s, sig, err := r.Statement()
	if err != nil {
		return nil, err
	}
	server, err := dir.Lookup(s.ServerID)
	if err != nil {
		return nil, fmt.Errorf("%w: server %q is not in the identity directory", ErrUnknownServer, s.ServerID)
	}
	if server.PeerID != s.ServerPeer {
		return nil, fmt.Errorf("%w: receipt names server peer %s, the directory's key for %q is peer %s", ErrWrongServerKey, s.ServerPeer, s.ServerID, server.PeerID)
	}
	signed, _ := base64.StdEncoding.DecodeString(r.SignedData)
	if err := VerifySignature(server.PublicKey, signed, sig); err != nil {
		return nil, fmt.Errorf("%w: the signature does not verify with the public key of %q", ErrBadSignature, s.ServerID)
	}
	if documentHash != nil && subtle.ConstantTimeCompare(documentHash, s.DocumentHash) != 1 {
		return nil, fmt.Errorf("%w: the document hashes to %x, the receipt is for %x", ErrHashMismatch, documentHash, s.DocumentHash)
	}
	return s, nil
}

// HashFile returns SHA-256 of a file's exact bytes, streamed.
func HashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to hash document: %w", err)
	}
	defer f.Close()
	return HashReader(f)
}
