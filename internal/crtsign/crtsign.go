// Package crtsign makes RSASSA-PKCS1-v1_5 signatures over SHA-256
// digests with the two halves of the Chinese-remainder computation
// running at once, on two cores: the same signature bytes as
// crypto/rsa.SignPKCS1v15, in about half the time when a core is free.
//
// The timestamp server signs one tree head at a time, and every stamp
// waits for one; an RSA-4096 signature is two 2048-bit modular
// exponentiations that crypto/rsa runs one after the other. The
// arithmetic is filippo.io/bigmod, the constant-time code of crypto/rsa's
// own bigmod published as a module. As crypto/rsa does, every signature
// is checked with the public key before it is returned, so that a fault
// in one half cannot leak the key (Boneh–DeMillo–Lipton).
package crtsign

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"sync"

	"filippo.io/bigmod"

	"github.com/tsnode/tsnode/internal/rsaverify"
)

// ErrUnsupported reports a key this package does not sign with; use
// crypto/rsa for it.
var ErrUnsupported = errors.New("crtsign: unsupported key")

// sha256Prefix is the DER DigestInfo header for SHA-256 (RFC 8017 §9.2).
var sha256Prefix = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// Signer signs with one RSA private key. It is safe for concurrent use.
type Signer struct {
	pub     *rsa.PublicKey
	n, p, q *bigmod.Modulus
	dP, dQ  []byte
	qInv    *bigmod.Nat // mod p
}

// New prepares a signer for k: a validated two-prime key with its CRT
// values precomputed (as x509 parsing leaves it).
func New(k *rsa.PrivateKey) (*Signer, error) {
	if len(k.Primes) != 2 || k.Precomputed.Dp == nil || k.Precomputed.Dq == nil || k.Precomputed.Qinv == nil {
		return nil, fmt.Errorf("%w: want two primes and precomputed CRT values", ErrUnsupported)
	}
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("crtsign: invalid key: %w", err)
	}
	s := &Signer{pub: &k.PublicKey, dP: k.Precomputed.Dp.Bytes(), dQ: k.Precomputed.Dq.Bytes()}
	var err error
	if s.n, err = bigmod.NewModulus(k.N.Bytes()); err != nil {
		return nil, fmt.Errorf("crtsign: modulus: %w", err)
	}
	if s.p, err = bigmod.NewModulus(k.Primes[0].Bytes()); err != nil {
		return nil, fmt.Errorf("crtsign: prime p: %w", err)
	}
	if s.q, err = bigmod.NewModulus(k.Primes[1].Bytes()); err != nil {
		return nil, fmt.Errorf("crtsign: prime q: %w", err)
	}
	if s.qInv, err = bigmod.NewNat().SetBytes(k.Precomputed.Qinv.Bytes(), s.p); err != nil {
		return nil, fmt.Errorf("crtsign: qInv: %w", err)
	}
	return s, nil
}

// SignSHA256 signs a SHA-256 digest: RSASSA-PKCS1-v1_5 (RFC 8017 §8.2.1).
func (s *Signer) SignSHA256(digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, fmt.Errorf("crtsign: digest of %d bytes, want 32", len(digest))
	}
	k := s.pub.Size()
	em, err := encodePKCS1v15(k, digest)
	if err != nil {
		return nil, err
	}
	c, err := bigmod.NewNat().SetBytes(em, s.n)
	if err != nil {
		return nil, fmt.Errorf("crtsign: %w", err)
	}
	// m1 = c^dP mod p on another goroutine, m2 = c^dQ mod q on this one.
	var m1 *bigmod.Nat
	var wg sync.WaitGroup
	wg.Go(func() { m1 = bigmod.NewNat().Exp(bigmod.NewNat().Mod(c, s.p), s.dP, s.p) })
	m2 := bigmod.NewNat().Exp(bigmod.NewNat().Mod(c, s.q), s.dQ, s.q)
	wg.Wait()
	// Garner: m = m2 + q·(qInv·(m1 − m2) mod p), as crypto/rsa computes it.
	t := bigmod.NewNat()
	m1.Sub(t.Mod(m2, s.p), s.p)
	m1.Mul(s.qInv, s.p)
	m1.ExpandFor(s.n).Mul(t.Mod(s.q.Nat(), s.n), s.n)
	m1.Add(m2.ExpandFor(s.n), s.n)
	sig := m1.Bytes(s.n)
	if !rsaverify.SHA256(s.pub, digest, sig) {
		return nil, errors.New("crtsign: the signature does not verify (a fault, or a key whose CRT values do not match it); not released")
	}
	return sig, nil
}

// Signer is a crypto.Signer, so that code signing tree heads can take
// either it or an *rsa.PrivateKey.
var _ crypto.Signer = (*Signer)(nil)

// Public returns the *rsa.PublicKey of the signer's key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a SHA-256 digest with PKCS#1 v1.5, as rsa.PrivateKey.Sign
// does for crypto.SHA256: the bytes of rsa.SignPKCS1v15. It refuses other
// hashes and PSS, which this signer does not make. rand is not used:
// PKCS#1 v1.5 is deterministic and bigmod's arithmetic is constant-time,
// so no blinding is needed.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, fmt.Errorf("%w: PSS", ErrUnsupported)
	}
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("%w: hash %v, only SHA-256", ErrUnsupported, hashOf(opts))
	}
	return s.SignSHA256(digest)
}

func hashOf(opts crypto.SignerOpts) crypto.Hash {
	if opts == nil {
		return 0
	}
	return opts.HashFunc()
}

// encodePKCS1v15 is EMSA-PKCS1-v1_5 for SHA-256: 00 01 FF…FF 00 DigestInfo.
func encodePKCS1v15(k int, digest []byte) ([]byte, error) {
	tLen := len(sha256Prefix) + len(digest)
	if k < tLen+11 {
		return nil, fmt.Errorf("%w: %d-byte modulus too short", ErrUnsupported, k)
	}
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-tLen-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-tLen:], sha256Prefix)
	copy(em[k-len(digest):], digest)
	return em, nil
}
