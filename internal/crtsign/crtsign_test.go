package crtsign

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// PKCS#1 v1.5 is deterministic: the signer must give crypto/rsa's bytes.
func TestSameSignatureAsCryptoRSA(t *testing.T) {
	for _, id := range []identity.ID{"server", "1000", "2000"} {
		key := testkeys.Private(t, id)
		s, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
			want, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.SignSHA256(digest[:])
			if err != nil {
				t.Fatalf("%s, message %d: %v", id, i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s, message %d: signature differs from crypto/rsa's", id, i)
			}
		}
	}
}

// As a crypto.Signer it gives the bytes of rsa.SignPKCS1v15 (what
// *rsa.PrivateKey.Sign gives for crypto.SHA256) and refuses what it does
// not make: other hashes, no hash, PSS.
func TestCryptoSigner(t *testing.T) {
	key := testkeys.Private(t, "server")
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	var signer crypto.Signer = s
	if pub, ok := signer.Public().(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Fatalf("Public() = %T %v, want the key's *rsa.PublicKey", signer.Public(), signer.Public())
	}
	digest := sha256.Sum256([]byte("tree head"))
	want, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	got, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("crypto.Signer signature differs from rsa.SignPKCS1v15's")
	}
	for name, opts := range map[string]crypto.SignerOpts{
		"SHA-512": crypto.SHA512,
		"no hash": crypto.Hash(0),
		"nil":     nil,
		"PSS":     &rsa.PSSOptions{Hash: crypto.SHA256},
	} {
		if sig, err := signer.Sign(rand.Reader, digest[:], opts); !errors.Is(err, ErrUnsupported) || sig != nil {
			t.Errorf("%s: signature %x, error %v; want ErrUnsupported", name, sig, err)
		}
	}
}

// A wrong CRT half (as a fault would make) is caught by the check with
// the public key, and nothing is released.
func TestFaultIsNotReleased(t *testing.T) {
	key := testkeys.Private(t, "server")
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	s.dP = new(big.Int).Add(key.Precomputed.Dp, big.NewInt(2)).Bytes()
	digest := sha256.Sum256([]byte("x"))
	sig, err := s.SignSHA256(digest[:])
	if err == nil || sig != nil {
		t.Fatalf("faulty half: signature %x, error %v; want no signature and an error", sig, err)
	}
}

func TestRefuses(t *testing.T) {
	key := testkeys.Private(t, "server")
	noCRT := *key
	noCRT.Precomputed = rsa.PrecomputedValues{}
	threePrimes := *key
	threePrimes.Primes = append(append([]*big.Int(nil), key.Primes...), big.NewInt(3))
	for _, tc := range []struct {
		name string
		key  *rsa.PrivateKey
	}{
		{"no precomputed CRT values", &noCRT},
		{"three primes", &threePrimes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.key); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("New: %v, want ErrUnsupported", err)
			}
		})
	}
	t.Run("primes that are not the key's", func(t *testing.T) {
		other := testkeys.Private(t, "1000")
		mixed := *key
		mixed.Primes = other.Primes
		mixed.Precomputed = other.Precomputed
		if _, err := New(&mixed); err == nil {
			t.Fatal("New accepted a key whose primes belong to another key")
		}
	})
	t.Run("digest not 32 bytes", func(t *testing.T) {
		s, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SignSHA256(make([]byte, 31)); err == nil {
			t.Fatal("signed a 31-byte digest")
		}
	})
}

// BenchmarkSign compares one RSA-4096 signature with crypto/rsa and with
// the two CRT halves at once (the gain needs two free cores):
//
//	go test -run '^$' -bench Sign ./internal/crtsign/
func BenchmarkSign(b *testing.B) {
	key := testkeys.Private(b, "server")
	digest := sha256.Sum256([]byte("tree head"))
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crtsign", func(b *testing.B) {
		s, err := New(key)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.SignSHA256(digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
