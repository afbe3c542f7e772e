package protocol

import (
	"crypto/rsa"
	"crypto/sha256"

	"github.com/tsnode/tsnode/internal/rsaverify"
)

// VerifySignature checks an RSASSA-PKCS1-v1_5 SHA-256 signature
// (internal/rsaverify: variable time, the values being public).
func VerifySignature(pub *rsa.PublicKey, data, sig []byte) error {
	digest := sha256.Sum256(data)
	if !rsaverify.SHA256(pub, digest[:], sig) {
		return ErrBadSignature
	}
	return nil
}
