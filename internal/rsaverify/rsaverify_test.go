package rsaverify

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// TestVerifyMatchesCryptoRSA: the variable-time check says yes exactly
// when crypto/rsa does, for good signatures, every kind of damage, and
// values crypto/rsa refuses (too long, too short, not below n).
func TestVerifyMatchesCryptoRSA(t *testing.T) {
	key := testkeys.Private(t, "server")
	other := testkeys.Private(t, "1000")
	pub := &key.PublicKey
	data := []byte("tsnode-tree-head-v1 or anything else")
	digest := sha256.Sum256(data)
	sig := mustSign(t, key, data)
	k := len(sig)
	nBytes := pub.N.FillBytes(make([]byte, k))
	// s^e for a chosen em: what a forger controls is em, never s.
	raw := func(em []byte) []byte {
		d := key.D
		m := new(big.Int).SetBytes(em)
		return new(big.Int).Exp(m, d, pub.N).FillBytes(make([]byte, k))
	}
	em := new(big.Int).Exp(new(big.Int).SetBytes(sig), big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, k))
	variant := func(f func([]byte)) []byte {
		e := append([]byte(nil), em...)
		f(e)
		return raw(e)
	}
	cases := map[string][]byte{
		"good":                  sig,
		"other key":             mustSign(t, other, data),
		"bit flipped":           flip(sig, 100),
		"last bit flipped":      flip(sig, k-1),
		"truncated":             sig[1:],
		"one byte more":         append([]byte{0}, sig...),
		"empty":                 {},
		"zero":                  make([]byte, k),
		"one":                   append(make([]byte, k-1), 1),
		"n itself":              nBytes,
		"n plus one":            new(big.Int).Add(pub.N, big.NewInt(1)).FillBytes(make([]byte, k)),
		"sig plus n":            new(big.Int).Add(new(big.Int).SetBytes(sig), pub.N).FillBytes(make([]byte, k+1))[1:],
		"type 2 padding":        variant(func(e []byte) { e[1] = 0x02 }),
		"a padding byte not ff": variant(func(e []byte) { e[10] = 0xfe }),
		"no zero separator":     variant(func(e []byte) { e[k-52] = 0xff }),
		"another hash's info":   variant(func(e []byte) { e[k-51+14] = 0x02 }),
		"digest changed":        variant(func(e []byte) { e[k-1] ^= 1 }),
		"leading byte 01":       variant(func(e []byte) { e[0] = 0x01 }),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			want := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], s) == nil
			if got := SHA256(pub, digest[:], s); got != want {
				t.Fatalf("variable-time check says %v, crypto/rsa %v", got, want)
			}
			if name == "good" && !want {
				t.Fatal("the good signature does not verify")
			}
		})
	}
	for i := range 20 {
		s := make([]byte, k)
		rand.Read(s)
		s[0] &= 0x7f
		if SHA256(pub, digest[:], s) != (rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], s) == nil) {
			t.Fatalf("random signature %d: the checks disagree", i)
		}
	}
	if SHA256(nil, digest[:], sig) || SHA256(&rsa.PublicKey{}, digest[:], sig) {
		t.Fatal("a missing key verified")
	}
}

func mustSign(t *testing.T, key *rsa.PrivateKey, data []byte) []byte {
	t.Helper()
	d := sha256.Sum256(data)
	s, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// FuzzVerifySignature: for any signature bytes, the variable-time check
// agrees with crypto/rsa.
func FuzzVerifySignature(f *testing.F) {
	key := testkeys.Private(f, "server")
	d := sha256.Sum256([]byte("seed"))
	good, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("seed"), good)
	f.Add([]byte("seed"), flip(good, 3))
	f.Add([]byte("x"), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data, sig []byte) {
		d := sha256.Sum256(data)
		want := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig) == nil
		if got := SHA256(&key.PublicKey, d[:], sig); got != want {
			t.Fatalf("variable-time check says %v, crypto/rsa %v", got, want)
		}
	})
}

// BenchmarkVerify compares the variable-time check with crypto/rsa's, on
// an RSA-4096 signature: go test -bench Verify ./internal/rsaverify
func BenchmarkVerify(b *testing.B) {
	key := testkeys.Private(b, "server")
	d := sha256.Sum256([]byte("a tree head"))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("rsaverify", func(b *testing.B) {
		for b.Loop() {
			if !SHA256(&key.PublicKey, d[:], sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("crypto-rsa", func(b *testing.B) {
		for b.Loop() {
			if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig) != nil {
				b.Fatal("does not verify")
			}
		}
	})
}
