package protocol

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
)

// Hybrid sealing: RSA-OAEP under a 4096-bit key carries at most 446
// bytes, too little for a reply with a 512-byte signature, so a fresh
// AES-256 key is wrapped with RSA-OAEP (SHA-256) and the message is
// encrypted under it with AES-256-GCM.
//
//	sealed = version(1 byte, 0x01) || wrapped key (512 bytes) ||
//	         GCM nonce (12 bytes) || AES-256-GCM ciphertext and tag
//
// The context string is both the OAEP label and the GCM additional data,
// so a box sealed for one purpose does not open for another.

const (
	sealVersion   = 1
	wrappedKeyLen = 512
	gcmNonceLen   = 12
	// SealOverhead is how many bytes sealing adds to a plaintext.
	SealOverhead = 1 + wrappedKeyLen + gcmNonceLen + 16
)

// Seal encrypts plaintext to pub under context.
func Seal(pub *rsa.PublicKey, context string, plaintext []byte) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return sealWithKey(pub, context, key, plaintext)
}

func sealWithKey(pub *rsa.PublicKey, context string, key, plaintext []byte) ([]byte, error) {
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, key, []byte(context))
	if err != nil {
		return nil, fmt.Errorf("failed to wrap key: %w", err)
	}
	if len(wrapped) != wrappedKeyLen {
		return nil, fmt.Errorf("failed to wrap key: recipient key is not RSA-4096")
	}
	aead, err := NewGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, SealOverhead+len(plaintext))
	out = append(out, sealVersion)
	out = append(out, wrapped...)
	nonce := make([]byte, gcmNonceLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, []byte(context)), nil
}

// Open decrypts a box sealed to priv under context.
func Open(priv *rsa.PrivateKey, context string, sealed []byte) ([]byte, error) {
	if len(sealed) < SealOverhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte minimum", ErrOpen, len(sealed), SealOverhead)
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown sealing version %d", ErrOpen, sealed[0])
	}
	wrapped := sealed[1 : 1+wrappedKeyLen]
	nonce := sealed[1+wrappedKeyLen : 1+wrappedKeyLen+gcmNonceLen]
	ct := sealed[1+wrappedKeyLen+gcmNonceLen:]
	key, err := rsa.DecryptOAEP(sha256.New(), nil, priv, wrapped, []byte(context))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%w: key unwrap failed (not sealed to this key, or for another purpose)", ErrOpen)
	}
	aead, err := NewGCM(key)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, ct, []byte(context))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (tampered)", ErrOpen)
	}
	return pt, nil
}

func NewGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
