package protocol

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// EvidenceFormat marks an evidence file (PROTOCOL.md §13.5).
const EvidenceFormat = "tsnode-evidence-v1"

// EvidenceFile is evidence as a JSON file a stranger checks offline with
// only the authority's public key (tsnode verify --evidence).
type EvidenceFile struct {
	Format string           `json:"format"`
	Kind   string           `json:"kind"` // what it proves; must be what Verify finds
	First  *ReceiptTreeHead `json:"first"`
	Second *ReceiptTreeHead `json:"second"`
	Path   []string         `json:"path"` // lowercase hex hashes
}

// File returns e as an evidence file.
func (e *Evidence) File() *EvidenceFile {
	f := &EvidenceFile{Format: EvidenceFormat, Kind: e.Kind(), First: newReceiptTreeHead(e.First), Second: newReceiptTreeHead(e.Second), Path: []string{}}
	for _, h := range e.Path {
		f.Path = append(f.Path, hex.EncodeToString(h[:]))
	}
	return f
}

// ParseEvidenceFile decodes an evidence file, as strictly as a receipt.
func ParseEvidenceFile(b []byte) (*EvidenceFile, error) {
	f, err := parseStrict[EvidenceFile](b, evidenceShape)
	return f, asEvidenceError(err)
}

// ReadEvidenceFile reads and parses an evidence file.
func ReadEvidenceFile(path string) (*EvidenceFile, error) {
	return readStrictFile(path, "evidence", ParseEvidenceFile)
}

// Evidence decodes the file's heads and path; signatures are not checked.
func (f *EvidenceFile) Evidence() (*Evidence, error) {
	if f.Format != EvidenceFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedEvidence, f.Format, EvidenceFormat)
	}
	first, err := f.First.decode("first")
	if err != nil {
		return nil, asEvidenceError(err)
	}
	second, err := f.Second.decode("second")
	if err != nil {
		return nil, asEvidenceError(err)
	}
	path, err := decodeHashList("path", f.Path)
	if err != nil {
		return nil, asEvidenceError(err)
	}
	return &Evidence{First: first, Second: second, Path: path}, nil
}

// Verify checks the file (Evidence.Verify) and that its kind is what the
// heads prove.
func (f *EvidenceFile) Verify(trust *Trust) (string, error) {
	e, err := f.Evidence()
	if err != nil {
		return "", err
	}
	kind, err := e.Verify(trust)
	if err != nil {
		return "", err
	}
	if f.Kind != kind {
		return "", fmt.Errorf("%w: member kind is %q, the heads prove %q", ErrMalformedEvidence, f.Kind, kind)
	}
	return kind, nil
}

// asEvidenceError turns the receipt-shaped errors of the shared JSON
// readers into ErrMalformedEvidence.
func asEvidenceError(err error) error {
	if err == nil || !errors.Is(err, ErrMalformedReceipt) {
		return err
	}
	return fmt.Errorf("%w: %s", ErrMalformedEvidence, strings.TrimPrefix(err.Error(), ErrMalformedReceipt.Error()+": "))
}

// ServerIDOf is the server id the head's signed bytes name, "" if they do
// not parse.
func (th *ReceiptTreeHead) ServerIDOf() string {
	sth, err := th.decode("head")
	if err != nil {
		return ""
	}
	return string(sth.Head.ServerID)
}
