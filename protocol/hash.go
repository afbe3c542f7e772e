package protocol

import (
	"crypto/sha256"
	"io"
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
