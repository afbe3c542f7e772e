package identity_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/youmark/pkcs8"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// Fuzz targets of the key file parsers, seeded from internal/testkeys.
// The test keys are encrypted with 600,000 PBKDF2 iterations, far too
// slow per fuzz input, so the targets lower the parser's iteration bound
// and wrap fuzzed PKCS#8 bodies in cheap encryption themselves.

// fuzzMaxIterations is the iteration bound while fuzzing.
const fuzzMaxIterations = 2048

// How FuzzParsePrivateKey reads its input.
const (
	privFile   = iota // the whole key file
	privDER           // the DER of an ENCRYPTED PRIVATE KEY block
	privPBES2         // a PKCS#8 body, encrypted here (PBES2, 1 iteration)
	privLegacy        // a PKCS#8 body, encrypted here as PyCryptodome did
	privModes
)

var (
	oidPBES2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMAC256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// encryptPBES2 encrypts any body as PBES2 DER (PBKDF2-HMAC-SHA-256 with
// iter iterations, AES-256-CBC), with a fixed salt and IV: the pkcs8
// package only encrypts keys it can marshal, and fuzzing needs to
// encrypt arbitrary bytes, deterministically.
func encryptPBES2(tb testing.TB, body, passphrase []byte, iter int) []byte {
	tb.Helper()
	pad := aes.BlockSize - len(body)%aes.BlockSize
	return encryptPBES2Raw(tb, append(bytes.Clone(body), bytes.Repeat([]byte{byte(pad)}, pad)...), passphrase, iter)
}

// encryptPBES2Raw encrypts whole AES blocks as they are, unpadded.
func encryptPBES2Raw(tb testing.TB, pt, passphrase []byte, iter int) []byte {
	tb.Helper()
	salt, iv := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, aes.BlockSize)
	key, err := pbkdf2.Key(sha256.New, string(passphrase), salt, iter, 32)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	ct := bytes.Clone(pt)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	must := func(b []byte, err error) asn1.RawValue {
		if err != nil {
			tb.Fatal(err)
		}
		return asn1.RawValue{FullBytes: b}
	}
	kdf := must(asn1.Marshal(struct {
		Salt []byte
		Iter int
		PRF  pkix.AlgorithmIdentifier
	}{salt, iter, pkix.AlgorithmIdentifier{Algorithm: oidHMAC256, Parameters: asn1.NullRawValue}}))
	params := must(asn1.Marshal(struct{ KDF, Scheme pkix.AlgorithmIdentifier }{
		pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: kdf},
		pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: must(asn1.Marshal(iv))},
	}))
	return must(asn1.Marshal(struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}{pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: params}, ct})).FullBytes
}

// encryptLegacy writes body as PyCryptodome's legacy PEM did
// (DES-EDE3-CBC, Proc-Type/DEK-Info headers), with a fixed IV.
func encryptLegacy(tb testing.TB, body, passphrase []byte) []byte {
	tb.Helper()
	//lint:ignore SA1019 the legacy format is what the test must write.
	block, err := x509.EncryptPEMBlock(bytes.NewReader(bytes.Repeat([]byte{3}, 8)), "PRIVATE KEY", body, passphrase, x509.PEMCipher3DES) //nolint:staticcheck
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func pkcs8Of(tb testing.TB, key any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// FuzzParsePrivateKey: a key file parses to a valid RSA-4096 key (the
// same again, refused under another passphrase, its public half read
// back by ParsePublicKey), or fails with a sentinel of the package,
// naming the file and never the passphrase.
func FuzzParsePrivateKey(f *testing.F) {
	pass := []byte(testkeys.Passphrase)
	key := testkeys.Private(f, "1000") // decrypted before the bound is lowered
	rsaDER := pkcs8Of(f, key)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), bytes.NewReader(bytes.Repeat([]byte{4}, 64)))
	if err != nil {
		f.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{5}, 32)))
	if err != nil {
		f.Fatal(err)
	}
	for _, der := range [][]byte{rsaDER, pkcs8Of(f, ec), pkcs8Of(f, ed), x509.MarshalPKCS1PrivateKey(key), nil} {
		f.Add(der, uint8(privPBES2))
		f.Add(der, uint8(privLegacy))
	}
	fast := encryptPBES2(f, rsaDER, pass, 1)
	f.Add(fast, uint8(privDER))
	f.Add(encryptPBES2(f, rsaDER, pass, fuzzMaxIterations+1), uint8(privDER))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: fast}), uint8(privFile))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), uint8(privFile))
	f.Add(encryptLegacy(f, rsaDER, pass), uint8(privFile))
	for _, name := range []string{"pycryptodome-legacy.pem", "private/server.pem", "small-2048.pem", "public/1000.pem"} {
		f.Add(testkeys.File(f, name), uint8(privFile))
	}
	f.Cleanup(identity.SetMaxPBKDF2Iterations(fuzzMaxIterations))
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		data := b
		switch mode % privModes {
		case privDER:
			data = pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: b})
		case privPBES2:
			data = pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: encryptPBES2(t, b, pass, 1)})
		case privLegacy:
			data = encryptLegacy(t, b, pass)
		}
		const name = "fuzz/private.pem"
		k, err := identity.ParsePrivateKey(name, data, pass)
		if err != nil {
			checkKeyError(t, err, name, data, identity.ErrMalformedKey, identity.ErrWrongPassphrase, identity.ErrNotRSA, identity.ErrKeySize)
			return
		}
		if k.N.BitLen() != identity.KeyBits || k.Validate() != nil {
			t.Fatalf("accepted a %d-bit key (Validate: %v)", k.N.BitLen(), k.Validate())
		}
		if mode%privModes == privPBES2 || mode%privModes == privLegacy {
			std, err := x509.ParsePKCS8PrivateKey(b)
			if err != nil || !k.Equal(std) {
				t.Fatalf("accepted a PKCS#8 body that crypto/x509 reads otherwise (%v)", err)
			}
		}
		if again, err := identity.ParsePrivateKey(name, data, pass); err != nil || !k.Equal(again) {
			t.Fatalf("parsed once, then %v", err)
		}
		if _, err := identity.ParsePrivateKey(name, data, []byte(wrongPassphrase)); !errors.Is(err, identity.ErrWrongPassphrase) && !errors.Is(err, identity.ErrMalformedKey) {
			t.Fatalf("another passphrase: %v, want ErrWrongPassphrase or ErrMalformedKey", err)
		}
		pubPEM, err := identity.EncodePublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if pub, err := identity.ParsePublicKey("pub.pem", pubPEM); err != nil || !pub.Equal(&k.PublicKey) {
			t.Fatalf("its public half does not read back: %v", err)
		}
		if _, err := identity.LibP2PPrivateKey(k); err != nil {
			t.Fatalf("libp2p refuses an accepted key: %v", err)
		}
	})
}

// How FuzzParsePublicKey reads its input.
const (
	pubFile  = iota // the whole file
	pubPKIX         // the DER of a PUBLIC KEY block
	pubPKCS1        // the DER of an RSA PUBLIC KEY block
	pubModes
)

// FuzzParsePublicKey: a public key file parses to an RSA-4096 key that
// EncodePublicKey writes back readably and that has a peer ID, or fails
// with a sentinel of the package naming the file.
func FuzzParsePublicKey(f *testing.F) {
	for _, name := range []string{"public/server.pem", "public/1000.pem", "small-2048.pub.pem", "pycryptodome-legacy.pub.pem", "private/1000.pem"} {
		f.Add(testkeys.File(f, name), uint8(pubFile))
	}
	pub, err := identity.ParsePublicKey("2000.pem", testkeys.File(f, "public/2000.pem"))
	if err != nil {
		f.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(spki, uint8(pubPKIX))
	f.Add(x509.MarshalPKCS1PublicKey(pub), uint8(pubPKCS1))
	f.Add(x509.MarshalPKCS1PublicKey(pub), uint8(pubPKIX))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)}), uint8(pubFile))
	f.Add([]byte{}, uint8(pubFile))
	f.Fuzz(func(t *testing.T, b []byte, mode uint8) {
		data := b
		switch mode % pubModes {
		case pubPKIX:
			data = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b})
		case pubPKCS1:
			data = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: b})
		}
		const name = "fuzz/public.pem"
		k, err := identity.ParsePublicKey(name, data)
		if err != nil {
			checkKeyError(t, err, name, data, identity.ErrMalformedKey, identity.ErrNotRSA, identity.ErrKeySize)
			return
		}
		if k.N.BitLen() != identity.KeyBits {
			t.Fatalf("accepted a %d-bit key", k.N.BitLen())
		}
		out, err := identity.EncodePublicKey(k)
		if err != nil {
			t.Fatalf("an accepted key does not encode: %v", err)
		}
		if back, err := identity.ParsePublicKey(name, out); err != nil || !back.Equal(k) {
			t.Fatalf("an accepted key, written out, reads back as %v", err)
		}
		p, err := identity.PeerIDFromPublicKey(k)
		if err != nil {
			t.Fatalf("an accepted key has no peer ID: %v", err)
		}
		if q, err := identity.ParsePeerID(p.String()); err != nil || q != p {
			t.Fatalf("its peer ID %s does not parse back: %v", p, err)
		}
	})
}

// checkKeyError: err wraps one of sentinels, names the file, and holds
// no passphrase that the input did not hold itself.
func checkKeyError(t *testing.T, err error, name string, data []byte, sentinels ...error) {
	t.Helper()
	known := false
	for _, s := range sentinels {
		known = known || errors.Is(err, s)
	}
	if !known {
		t.Fatalf("error %q wraps none of %v", err, sentinels)
	}
	if !strings.Contains(err.Error(), name) {
		t.Fatalf("error %q does not name %s", err, name)
	}
	for _, secret := range []string{testkeys.Passphrase, wrongPassphrase} {
		if strings.Contains(err.Error(), secret) && !bytes.Contains(data, []byte(secret)) {
			t.Fatalf("error %q leaks the passphrase", err)
		}
	}
}

// TestPBKDF2IterationBound: the iteration count a key file asks for is
// checked before anything is derived: a file asking for 2^31-1 would
// otherwise take minutes to fail. scrypt, whose parameters can ask for
// gigabytes, is refused outright.
func TestPBKDF2IterationBound(t *testing.T) {
	pass := []byte(testkeys.Passphrase)
	der := pkcs8Of(t, testkeys.Private(t, "1000"))
	one := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: encryptPBES2(t, der, pass, 1)})
	if _, err := identity.ParsePrivateKey("k.pem", one, pass); err != nil {
		t.Fatalf("1 iteration: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(kdf *pkix.AlgorithmIdentifier)
		want string
	}{
		{"2^31-1 iterations", setIterations(t, 1<<31-1), "iteration count 2147483647 is outside 1 to"},
		{"one over the bound", setIterations(t, int64(identity.MaxPBKDF2Iterations())+1), "is outside 1 to 10000000"},
		{"zero iterations", setIterations(t, 0), "iteration count 0 is outside"},
		{"negative iterations", setIterations(t, -5), "iteration count -5 is outside"},
		{"scrypt", func(kdf *pkix.AlgorithmIdentifier) {
			kdf.Algorithm = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
			raw, _ := asn1.Marshal(struct {
				Salt    []byte
				N, R, P int
			}{[]byte("salt"), 1 << 16, 8, 1})
			kdf.Parameters = asn1.RawValue{FullBytes: raw}
		}, "scrypt; tsnode reads PBKDF2 only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := mutatePBES2(t, one, func(_ *encryptedPrivateKeyInfo, p *pbes2Params) { tc.edit(&p.KDF) })
			k, err := identity.ParsePrivateKey("keys/k.pem", data, pass)
			if k != nil {
				t.Fatal("got a key")
			}
			checkErr(t, err, identity.ErrMalformedKey, "keys/k.pem")
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// setIterations rewrites a PBKDF2 parameter block's iteration count.
func setIterations(t *testing.T, n int64) func(kdf *pkix.AlgorithmIdentifier) {
	return func(kdf *pkix.AlgorithmIdentifier) {
		var p struct {
			Salt []byte
			Iter int64
			PRF  pkix.AlgorithmIdentifier
		}
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			t.Fatal(err)
		}
		p.Iter = n
		raw, err := asn1.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		kdf.Parameters = asn1.RawValue{FullBytes: raw}
	}
}

// TestPBES2Plaintext: the decrypted plaintext is exactly one PKCS#8 key
// and its PKCS#7 padding. The pkcs8 package checked neither, so a key
// cut short was completed by its padding bytes (found by
// FuzzParsePrivateKey, testdata/fuzz/FuzzParsePrivateKey/673b374b100eeeba)
// and trailing bytes were ignored.
func TestPBES2Plaintext(t *testing.T) {
	pass := []byte(testkeys.Passphrase)
	key := testkeys.Private(t, "1000")
	der := pkcs8Of(t, key)
	padded := func(b []byte, pad byte, n int) []byte {
		return append(bytes.Clone(b), bytes.Repeat([]byte{pad}, n)...)
	}
	whole := func(b []byte) []byte { return b[:len(b)-len(b)%aes.BlockSize] }
	for _, tc := range []struct {
		name string
		pt   []byte
	}{
		{"no padding", whole(der)},
		{"zero padding", padded(der, 0, aes.BlockSize-len(der)%aes.BlockSize)},
		{"padding over a block", padded(whole(der), 17, aes.BlockSize)},
		{"inconsistent padding", append(padded(der, 9, aes.BlockSize-len(der)%aes.BlockSize-1), 1)},
		{"trailing bytes", padded(padded(der, 0, aes.BlockSize-len(der)%aes.BlockSize), aes.BlockSize, aes.BlockSize)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.pt)%aes.BlockSize != 0 {
				t.Fatalf("test plaintext of %d bytes", len(tc.pt))
			}
			data := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: encryptPBES2Raw(t, tc.pt, pass, 1)})
			k, err := identity.ParsePrivateKey("keys/k.pem", data, pass)
			if k != nil {
				t.Fatal("got a key")
			}
			checkErr(t, err, identity.ErrWrongPassphrase, "keys/k.pem")
		})
	}
	// What openssl and the pkcs8 package also write still reads:
	// AES-128/192-CBC, DES-EDE3-CBC, PBKDF2 with HMAC-SHA-1.
	for _, c := range []pkcs8.Cipher{pkcs8.AES128CBC, pkcs8.AES192CBC, pkcs8.AES256CBC, pkcs8.TripleDESCBC} {
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			enc, err := pkcs8.MarshalPrivateKey(key, pass, &pkcs8.Opts{Cipher: c, KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 8, IterationCount: 2, HMACHash: h}})
			if err != nil {
				t.Fatal(err)
			}
			data := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc})
			if k, err := identity.ParsePrivateKey("k.pem", data, pass); err != nil || !k.Equal(key) {
				t.Errorf("cipher %v, %v: %v", c.OID(), h, err)
			}
		}
	}
}
