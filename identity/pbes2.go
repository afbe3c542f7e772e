package identity

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
)

// maxPBKDF2Iterations bounds the PBKDF2 iteration count a key file may
// ask for. The count is read from the file before the passphrase is
// tried, so without a bound a corrupt or hostile file costs unbounded CPU
// (2^31 iterations: minutes) before it fails. 10,000,000 is ~17 times what
// EncodePrivateKey writes: a few seconds. Tests lower it.
var maxPBKDF2Iterations = 10_000_000

// errIncorrectPassword: the key decrypted to something that is not a
// padded PKCS#8 key, which is what a wrong passphrase does.
var errIncorrectPassword = errors.New("incorrect passphrase")

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
)

// pbes2Ciphers are the encryption schemes read: AES-CBC (what openssl
// and EncodePrivateKey write) and DES-EDE3-CBC (openssl's old default).
var pbes2Ciphers = map[string]struct {
	keySize  int
	newBlock func([]byte) (cipher.Block, error)
}{
	"2.16.840.1.101.3.4.1.2":  {16, aes.NewCipher},
	"2.16.840.1.101.3.4.1.22": {24, aes.NewCipher},
	"2.16.840.1.101.3.4.1.42": {32, aes.NewCipher},
	"1.2.840.113549.3.7":      {24, des.NewTripleDESCipher},
}

// decryptPBES2 decrypts PBES2 PKCS#8 DER (RFC 8018) and parses the key.
// Everything taken from the file is checked before it is used: the KDF
// is PBKDF2 (scrypt, which the pkcs8 package would run, can ask for
// gigabytes of memory) with 1 to maxPBKDF2Iterations iterations, the IV
// is one cipher block, the ciphertext whole blocks; and the plaintext
// must be exactly a PKCS#8 key and its padding, which the pkcs8 package
// did not check (a key cut short was completed by its padding bytes).
func decryptPBES2(der, passphrase []byte) (any, error) {
	var info struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return nil, errors.New("not a PKCS#8 EncryptedPrivateKeyInfo")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encryption scheme %v is not PBES2", info.Algo.Algorithm)
	}
	var params struct{ KDF, Scheme pkix.AlgorithmIdentifier }
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return nil, errors.New("invalid PBES2 parameters")
	}
	c, ok := pbes2Ciphers[params.Scheme.Algorithm.String()]
	if !ok {
		return nil, fmt.Errorf("unsupported cipher %v", params.Scheme.Algorithm)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.Scheme.Parameters.FullBytes, &iv); err != nil {
		return nil, errors.New("invalid cipher parameters")
	}
	key, err := pbkdf2Key(params.KDF, passphrase, c.keySize)
	if err != nil {
		return nil, err
	}
	block, err := c.newBlock(key)
	if err != nil {
		return nil, err
	}
	bs := block.BlockSize()
	if len(iv) != bs {
		return nil, fmt.Errorf("IV of %d bytes, want %d", len(iv), bs)
	}
	if len(info.Data) == 0 || len(info.Data)%bs != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes is not whole %d-byte blocks", len(info.Data), bs)
	}
	pt := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, info.Data)
	// PKCS#7 padding, then one DER value and nothing else.
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > bs {
		return nil, errIncorrectPassword
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, errIncorrectPassword
		}
	}
	pt = pt[:len(pt)-pad]
	var whole asn1.RawValue
	if rest, err := asn1.Unmarshal(pt, &whole); err != nil || len(rest) != 0 {
		return nil, errIncorrectPassword
	}
	k, err := x509.ParsePKCS8PrivateKey(pt)
	if err != nil {
		return nil, errIncorrectPassword
	}
	return k, nil
}

// pbkdf2Key derives the cipher key from the PBKDF2 parameters of kdf,
// refusing any other KDF and out-of-bounds iteration counts.
func pbkdf2Key(kdf pkix.AlgorithmIdentifier, passphrase []byte, size int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidScrypt):
		return nil, errors.New("the key is encrypted with scrypt; tsnode reads PBKDF2 only (re-encrypt it: openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000)")
	case !kdf.Algorithm.Equal(oidPBKDF2):
		return nil, fmt.Errorf("key derivation function %v is not PBKDF2", kdf.Algorithm)
	}
	var p struct {
		Salt           []byte
		IterationCount int64
		KeyLength      int64                    `asn1:"optional"`
		PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
		return nil, errors.New("invalid PBKDF2 parameters")
	}
	if n := p.IterationCount; n < 1 || n > int64(maxPBKDF2Iterations) {
		return nil, fmt.Errorf("PBKDF2 iteration count %d is outside 1 to %d", n, maxPBKDF2Iterations)
	}
	if p.KeyLength != 0 && p.KeyLength != int64(size) {
		return nil, fmt.Errorf("PBKDF2 key length %d, the cipher takes %d", p.KeyLength, size)
	}
	var h func() hash.Hash
	switch prf := p.PRF.Algorithm; {
	case len(prf) == 0 || prf.Equal(oidHMACSHA1): // the default of RFC 8018
		h = sha1.New
	case prf.Equal(oidHMACSHA256):
		h = sha256.New
	default:
		return nil, fmt.Errorf("unsupported PBKDF2 pseudo-random function %v", prf)
	}
	return pbkdf2.Key(h, string(passphrase), p.Salt, int(p.IterationCount), size)
}
