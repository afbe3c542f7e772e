package protocol

import (
	"crypto"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 for RFC 3161 imprints
	"fmt"
	"io"
	"os"
)

// HashReader returns SHA-256 of everything r yields: the exact bytes, in
// constant memory. (The prototype stripped newlines first.)
func HashReader(r io.Reader) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// hashFileWith returns the hash h of a file's exact bytes, streamed.
func hashFileWith(path string, h crypto.Hash) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to hash document: %w", err)
	}
	defer f.Close()
	w := h.New()
	if _, err := io.Copy(w, f); err != nil {
		return nil, fmt.Errorf("failed to hash document: %w", err)
	}
	return w.Sum(nil), nil
}
