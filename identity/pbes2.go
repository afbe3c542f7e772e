package identity

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// maxPBKDF2Iterations bounds the PBKDF2 iteration count a key file may
// ask for. The count is read from the file before the passphrase is
// tried, so without a bound a corrupt or hostile file costs unbounded CPU
// (2^31 iterations: minutes) before it fails. 10,000,000 is ~17 times what
// EncodePrivateKey writes: a few seconds. Tests lower it.
var maxPBKDF2Iterations = 10_000_000

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
)

// checkPBES2KDF reads the key derivation parameters of PBES2 PKCS#8 DER
// before anything is derived. It refuses every KDF but PBKDF2 (the pkcs8
// package would also run scrypt, whose cost parameters, taken from the
// file, can ask for gigabytes of memory) and iteration counts outside
// 1..maxPBKDF2Iterations. The rest is left to pkcs8.ParsePrivateKey.
func checkPBES2KDF(der []byte) error {
	var info struct {
		Algo pkix.AlgorithmIdentifier
		Data []byte
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return errors.New("not a PKCS#8 EncryptedPrivateKeyInfo")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return fmt.Errorf("encryption scheme %v is not PBES2", info.Algo.Algorithm)
	}
	var params struct{ KDF, Scheme pkix.AlgorithmIdentifier }
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		return errors.New("invalid PBES2 parameters")
	}
	switch kdf := params.KDF.Algorithm; {
	case kdf.Equal(oidScrypt):
		return errors.New("the key is encrypted with scrypt; tsnode reads PBKDF2 only (re-encrypt it: openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 600000)")
	case !kdf.Equal(oidPBKDF2):
		return fmt.Errorf("key derivation function %v is not PBKDF2", kdf)
	}
	var kdf struct {
		Salt           []byte
		IterationCount int64
	}
	if _, err := asn1.Unmarshal(params.KDF.Parameters.FullBytes, &kdf); err != nil {
		return errors.New("invalid PBKDF2 parameters")
	}
	if n := kdf.IterationCount; n < 1 || n > int64(maxPBKDF2Iterations) {
		return fmt.Errorf("PBKDF2 iteration count %d is outside 1 to %d", n, maxPBKDF2Iterations)
	}
	return nil
}
