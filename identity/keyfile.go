package identity

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/youmark/pkcs8"
)

// Sentinel errors callers can test with errors.Is.
var (
	ErrWrongPassphrase = errors.New("wrong passphrase")
	ErrNotRSA          = errors.New("not an RSA key")
	ErrKeySize         = errors.New("RSA key is not 4096 bits")
	ErrKeyExists       = errors.New("key file already exists")
	ErrMalformedKey    = errors.New("malformed key file")
	ErrInsecureMode    = errors.New("readable or writable by group or others")
)

// pbkdf2Iterations follows OWASP's 2023 advice for PBKDF2-HMAC-SHA-256.
const pbkdf2Iterations = 600_000

// PEM block types.
const (
	pemEncryptedPrivateKey = "ENCRYPTED PRIVATE KEY"
	pemPrivateKey          = "PRIVATE KEY"
	pemPublicKey           = "PUBLIC KEY"
)

// GenerateKey makes a fresh RSA-4096 key.
func GenerateKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, KeyBits)
}

// EncodePrivateKey returns key as PKCS#8 PEM encrypted with PBES2
// (PBKDF2-HMAC-SHA-256, AES-256-CBC), readable by `openssl pkey`.
func EncodePrivateKey(key *rsa.PrivateKey, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase: private keys are always encrypted")
	}
	der, err := pkcs8.MarshalPrivateKey(key, passphrase, &pkcs8.Opts{
		Cipher: pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{
			SaltSize:       16,
			IterationCount: pbkdf2Iterations,
			HMACHash:       crypto.SHA256,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("failed to encrypt private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedPrivateKey, Bytes: der}), nil
}

// EncodePublicKey returns pub as SubjectPublicKeyInfo PEM.
func EncodePublicKey(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ParsePrivateKey decodes an encrypted private key PEM. It accepts PBES2
// PKCS#8 ("ENCRYPTED PRIVATE KEY") and the legacy form PyCryptodome's
// exportKey(pkcs=8, passphrase=...) writes: a "PRIVATE KEY" block with
// Proc-Type/DEK-Info headers (DES-EDE3-CBC) around PKCS#8. name is used in
// errors only.
func ParsePrivateKey(name string, data, passphrase []byte) (*rsa.PrivateKey, error) {
	block, err := decodeOnePEM(name, data)
	if err != nil {
		return nil, err
	}
	var parsed any
	switch {
	case block.Type == pemEncryptedPrivateKey:
		if len(passphrase) == 0 {
			// pkcs8.ParsePrivateKey takes an empty passphrase to mean "not
			// encrypted" and would accept a plain PKCS#8 body here.
			return nil, fmt.Errorf("%s: %w (empty passphrase)", name, ErrWrongPassphrase)
		}
		parsed, err = parsePBES2(block.Bytes, passphrase)
		if err != nil {
			if errors.Is(err, errIncorrectPassword) {
				return nil, fmt.Errorf("%s: %w", name, ErrWrongPassphrase)
			}
			return nil, fmt.Errorf("%s: %w: %v", name, ErrMalformedKey, err)
		}
	case block.Type == pemPrivateKey && block.Headers["Proc-Type"] == "4,ENCRYPTED":
		//lint:ignore SA1019 legacy PEM encryption is what PyCryptodome wrote; we only read it.
		der, derr := x509.DecryptPEMBlock(block, passphrase) //nolint:staticcheck
		if derr != nil {
			if errors.Is(derr, x509.IncorrectPasswordError) {
				return nil, fmt.Errorf("%s: %w", name, ErrWrongPassphrase)
			}
			return nil, fmt.Errorf("%s: %w: %v", name, ErrMalformedKey, derr)
		}
		parsed, err = x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			// DES-EDE3-CBC padding checks pass by chance for ~1 in 256
			// wrong passphrases; the garbage then fails to parse.
			return nil, fmt.Errorf("%s: %w (legacy PEM decrypted to garbage)", name, ErrWrongPassphrase)
		}
	case block.Type == pemPrivateKey || block.Type == "RSA PRIVATE KEY":
		return nil, fmt.Errorf("%s: %w: private key is not encrypted; re-create it with tsnode keygen", name, ErrMalformedKey)
	default:
		return nil, fmt.Errorf("%s: %w: unexpected PEM block %q", name, ErrMalformedKey, block.Type)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %w (%T)", name, ErrNotRSA, parsed)
	}
	if err := checkSize(name, &key.PublicKey); err != nil {
		return nil, err
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrMalformedKey, err)
	}
	return key, nil
}

// parsePBES2 decrypts PBES2 PKCS#8 DER (decryptPBES2, which checks what
// made pkcs8.ParsePrivateKey panic: IV size, whole cipher blocks); a
// panic is still returned as an error.
func parsePBES2(der, passphrase []byte) (key any, err error) {
	defer func() {
		if r := recover(); r != nil {
			key, err = nil, fmt.Errorf("corrupt encrypted key: %v", r)
		}
	}()
	return decryptPBES2(der, passphrase)
}

// ParsePublicKey decodes a SubjectPublicKeyInfo PEM (also the PKCS#1
// "RSA PUBLIC KEY" form) holding an RSA-4096 key.
func ParsePublicKey(name string, data []byte) (*rsa.PublicKey, error) {
	block, err := decodeOnePEM(name, data)
	if err != nil {
		return nil, err
	}
	var parsed any
	switch block.Type {
	case pemPublicKey:
		parsed, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		parsed, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: %w: unexpected PEM block %q", name, ErrMalformedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrMalformedKey, err)
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: %w (%T)", name, ErrNotRSA, parsed)
	}
	if err := checkSize(name, pub); err != nil {
		return nil, err
	}
	return pub, nil
}

func checkSize(name string, pub *rsa.PublicKey) error {
	if bits := pub.N.BitLen(); bits != KeyBits {
		return fmt.Errorf("%s: %w: it has %d bits", name, ErrKeySize, bits)
	}
	return nil
}

// LoadPrivateKey reads and decrypts a private key file. A file readable
// or writable by group or others is refused (ErrInsecureMode) unless
// allowInsecure is not nil: then it is told why, and the key loads.
func LoadPrivateKey(path string, passphrase []byte, allowInsecure func(warning string)) (*rsa.PrivateKey, error) {
	data, err := ReadSecretFile("private key", path, allowInsecure)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKey(path, data, passphrase)
}

// ReadSecretFile reads a file holding a secret (what names it in
// errors: "private key", "passphrase file"). The mode is checked on the
// open file, so what is read is what was checked: a file readable or
// writable by group or others is refused with ErrInsecureMode, naming
// the file, its mode and the fix, unless allowInsecure is not nil, which
// is then told and the file read. Errors never hold the contents.
func ReadSecretFile(what, path string, allowInsecure func(warning string)) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", what, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", what, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		err := fmt.Errorf("%s %s has mode %04o: %w; fix it with: chmod 600 %s", what, path, perm, ErrInsecureMode, path)
		if allowInsecure == nil {
			return nil, err
		}
		allowInsecure(err.Error())
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s %s: %w", what, path, err)
	}
	return data, nil
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read public key: %w", err)
	}
	return ParsePublicKey(path, data)
}

// Paths of an id's key files under a keys directory.
func PrivateKeyPath(dir string, id ID) string {
	return filepath.Join(dir, "private", string(id)+".pem")
}

func PublicKeyPath(dir string, id ID) string {
	return filepath.Join(dir, "public", string(id)+".pem")
}

// WriteKeyPair writes dir/private/<id>.pem (mode 0600) and
// dir/public/<id>.pem. Without force it refuses to replace either file.
func WriteKeyPair(dir string, id ID, key *rsa.PrivateKey, passphrase []byte, force bool) error {
	if _, err := ParseID(string(id)); err != nil {
		return err
	}
	privPEM, err := EncodePrivateKey(key, passphrase)
	if err != nil {
		return err
	}
	pubPEM, err := EncodePublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	privPath, pubPath := PrivateKeyPath(dir, id), PublicKeyPath(dir, id)
	if !force {
		if err := CheckNoKeyPair(dir, id); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(privPath), 0o700); err != nil {
		return fmt.Errorf("failed to create private key directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(pubPath), 0o755); err != nil {
		return fmt.Errorf("failed to create public key directory: %w", err)
	}
	if err := writeFileAtomic(privPath, privPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(pubPath, pubPEM, 0o644)
}

// CheckNoKeyPair fails with ErrKeyExists if either key file of id exists
// under dir. keygen calls it before spending seconds on a new key.
func CheckNoKeyPair(dir string, id ID) error {
	for _, p := range []string{PrivateKeyPath(dir, id), PublicKeyPath(dir, id)} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s: %w (use --force to replace it)", p, ErrKeyExists)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("failed to check %s: %w", p, err)
		}
	}
	return nil
}

// writeFileAtomic writes through a temporary file and rename, so an
// interrupted write never leaves a truncated key behind.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// decodeOnePEM returns the one PEM block of a key file. Text before it is
// allowed (openssl writes "Bag Attributes" there); anything but white
// space after it, a second key above all, is refused: a file must not
// say two things about whose key it is.
func decodeOnePEM(name string, data []byte) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: %w: no PEM block", name, ErrMalformedKey)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: %w: data after the PEM block (a key file holds one key)", name, ErrMalformedKey)
	}
	return block, nil
}
