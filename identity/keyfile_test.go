package identity_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/youmark/pkcs8"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// wrongPassphrase is a distinctive secret: it must never show up in an error.
const wrongPassphrase = "Wr0ng-Secret-Passphrase-7e1f"

// checkErr asserts that err wraps want, names name, and leaks no passphrase.
func checkErr(t *testing.T, err, want error, name string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error %q: want errors.Is(err, %q)", err, want)
	}
	if name != "" && !strings.Contains(err.Error(), name) {
		t.Errorf("error %q does not name %q", err, name)
	}
	noSecrets(t, err.Error())
}

// noSecrets asserts that s holds none of the passphrases the tests use.
func noSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testkeys.Passphrase, wrongPassphrase} {
		if strings.Contains(s, secret) {
			t.Errorf("%q leaks the passphrase %q", s, secret)
		}
	}
}

// fastEncrypt returns key as PBES2 PKCS#8 PEM with a single PBKDF2
// iteration: structurally what EncodePrivateKey writes, but cheap to parse.
func fastEncrypt(t *testing.T, key any, passphrase string) []byte {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(key, []byte(passphrase), &pkcs8.Opts{
		Cipher:  pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 1, HMACHash: crypto.SHA256},
	})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}

// encryptedPrivateKeyInfo mirrors RFC 5208's EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

// mutatePBES2 decodes a PBES2 PEM, lets f edit it and re-encodes it.
func mutatePBES2(t *testing.T, pemData []byte, f func(info *encryptedPrivateKeyInfo, params *pbes2Params)) []byte {
	t.Helper()
	block, _ := pem.Decode(pemData)
	var info encryptedPrivateKeyInfo
	if _, err := asn1.Unmarshal(block.Bytes, &info); err != nil {
		t.Fatal(err)
	}
	var params pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &params); err != nil {
		t.Fatal(err)
	}
	f(&info, &params)
	raw, err := asn1.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	info.Algo.Parameters = asn1.RawValue{FullBytes: raw}
	der, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestEncodeParsePrivateKeyRoundTrip(t *testing.T) {
	key := testkeys.Private(t, "1000")
	data, err := identity.EncodePrivateKey(key, []byte(testkeys.Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "ENCRYPTED PRIVATE KEY" || len(rest) != 0 {
		t.Fatalf("EncodePrivateKey wrote %q", data)
	}
	if bytes.Contains(data, []byte(testkeys.Passphrase)) {
		t.Error("encoded key contains the passphrase")
	}
	// The body must really be encrypted: it is not a plain PKCS#8 key.
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		t.Error("EncodePrivateKey wrote an unencrypted key")
	}
	got, err := identity.ParsePrivateKey("roundtrip.pem", data, []byte(testkeys.Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Error("decoded key differs from the encoded one")
	}
	if got.Equal(testkeys.Private(t, "2000")) {
		t.Error("Equal does not tell keys apart")
	}
	// Two encodings of one key use fresh salts and IVs.
	again, err := identity.EncodePrivateKey(key, []byte(testkeys.Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, data) {
		t.Error("two encodings are identical: salt or IV is not random")
	}
}

func TestEncodePrivateKeyEmptyPassphrase(t *testing.T) {
	for _, pass := range [][]byte{nil, {}} {
		data, err := identity.EncodePrivateKey(testkeys.Private(t, "1000"), pass)
		if err == nil {
			t.Fatalf("EncodePrivateKey(%q) wrote %d bytes, want an error", pass, len(data))
		}
		if data != nil {
			t.Errorf("EncodePrivateKey(%q) returned data with its error", pass)
		}
	}
}

func TestEncodeParsePublicKeyRoundTrip(t *testing.T) {
	pub := &testkeys.Private(t, "1000").PublicKey
	data, err := identity.EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, testkeys.File(t, "public/1000.pem")) {
		t.Error("EncodePublicKey differs from the public key file keygen wrote")
	}
	got, err := identity.ParsePublicKey("pub.pem", data)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Error("decoded public key differs")
	}
	// The PKCS#1 "RSA PUBLIC KEY" form is accepted too.
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
	got, err = identity.ParsePublicKey("pkcs1.pem", pkcs1)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(pub) {
		t.Error("decoded PKCS#1 public key differs")
	}
}

func TestWriteKeyPair(t *testing.T) {
	dir := t.TempDir()
	pass := []byte(testkeys.Passphrase)
	key := testkeys.Private(t, "1000")
	if err := identity.WriteKeyPair(dir, "1000", key, pass, false); err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := identity.PrivateKeyPath(dir, "1000"), identity.PublicKeyPath(dir, "1000")
	if want := filepath.Join(dir, "private", "1000.pem"); privPath != want {
		t.Errorf("PrivateKeyPath = %s, want %s", privPath, want)
	}
	if want := filepath.Join(dir, "public", "1000.pem"); pubPath != want {
		t.Errorf("PublicKeyPath = %s, want %s", pubPath, want)
	}
	if m := fileMode(t, privPath); m != 0o600 {
		t.Errorf("private key mode %04o, want 0600", m)
	}
	if m := fileMode(t, pubPath); m != 0o644 {
		t.Errorf("public key mode %04o, want 0644", m)
	}
	if m := fileMode(t, filepath.Dir(privPath)); m != 0o700 {
		t.Errorf("private key directory mode %04o, want 0700", m)
	}
	// The atomic write leaves no temporary file behind.
	for _, sub := range []string{"private", "public"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "1000.pem" {
			t.Errorf("%s/ holds %v, want only 1000.pem", sub, entries)
		}
	}

	// WriteKeyPair's mode passes LoadPrivateKey's check.
	got, err := identity.LoadPrivateKey(privPath, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Error("private key file holds another key")
	}
	pub, err := identity.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&key.PublicKey) {
		t.Error("public key file holds another key")
	}

	origPriv, origPub := readFile(t, privPath), readFile(t, pubPath)
	other := testkeys.Private(t, "2000")

	t.Run("no force refuses", func(t *testing.T) {
		err := identity.WriteKeyPair(dir, "1000", other, pass, false)
		checkErr(t, err, identity.ErrKeyExists, privPath)
		if !bytes.Equal(readFile(t, privPath), origPriv) || !bytes.Equal(readFile(t, pubPath), origPub) {
			t.Error("a refused WriteKeyPair changed the key files")
		}
	})

	t.Run("no force refuses when only the public key exists", func(t *testing.T) {
		dir2 := t.TempDir()
		pub2 := identity.PublicKeyPath(dir2, "2000")
		if err := os.MkdirAll(filepath.Dir(pub2), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pub2, []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := identity.WriteKeyPair(dir2, "2000", other, pass, false)
		checkErr(t, err, identity.ErrKeyExists, pub2)
		if _, err := os.Stat(identity.PrivateKeyPath(dir2, "2000")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("refused WriteKeyPair created the private key: %v", err)
		}
		if string(readFile(t, pub2)) != "keep me" {
			t.Error("refused WriteKeyPair changed the public key")
		}
	})

	t.Run("force replaces", func(t *testing.T) {
		if err := identity.WriteKeyPair(dir, "1000", other, pass, true); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(readFile(t, privPath), origPriv) || bytes.Equal(readFile(t, pubPath), origPub) {
			t.Fatal("force did not replace the key files")
		}
		if m := fileMode(t, privPath); m != 0o600 {
			t.Errorf("replaced private key mode %04o, want 0600", m)
		}
		if m := fileMode(t, pubPath); m != 0o644 {
			t.Errorf("replaced public key mode %04o, want 0644", m)
		}
		got, err := identity.LoadPrivateKey(privPath, pass, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(other) {
			t.Error("replaced private key file holds the wrong key")
		}
		pub, err := identity.LoadPublicKey(pubPath)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Equal(&other.PublicKey) {
			t.Error("replaced public key file holds the wrong key")
		}
	})

	t.Run("empty passphrase writes nothing", func(t *testing.T) {
		dir2 := t.TempDir()
		if err := identity.WriteKeyPair(dir2, "1000", key, nil, false); err == nil {
			t.Fatal("WriteKeyPair with an empty passphrase succeeded")
		}
		if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
			t.Errorf("failed WriteKeyPair left %v behind", entries)
		}
	})

	t.Run("invalid id", func(t *testing.T) {
		dir2 := t.TempDir()
		keys := filepath.Join(dir2, "keys")
		for _, id := range []identity.ID{"../escape", "a/b", "", ".."} {
			if err := identity.WriteKeyPair(keys, id, key, pass, false); err == nil {
				t.Errorf("WriteKeyPair accepted id %q", id)
			}
		}
		if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
			t.Errorf("WriteKeyPair with invalid ids wrote %v", entries)
		}
	})

	t.Run("directory is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		err := identity.WriteKeyPair(file, "1000", key, pass, true)
		checkErr(t, err, nil, file)
	})
}

func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	dir := t.TempDir()
	key := testkeys.Private(t, "server")
	if err := identity.WriteKeyPair(dir, "server", key, []byte(testkeys.Passphrase), false); err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := identity.PrivateKeyPath(dir, "server"), identity.PublicKeyPath(dir, "server")
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte(testkeys.Passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrongFile, []byte(wrongPassphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl := func(args ...string) (string, error) {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		return string(out), err
	}
	parseModulus := func(out string) *big.Int {
		t.Helper()
		hex, ok := strings.CutPrefix(strings.TrimSpace(out), "Modulus=")
		n, ok2 := new(big.Int).SetString(hex, 16)
		if !ok || !ok2 {
			t.Fatalf("openssl printed %q, want Modulus=HEX", out)
		}
		return n
	}

	if out, err := openssl("pkey", "-in", privPath, "-passin", "file:"+passFile, "-noout"); err != nil {
		t.Fatalf("openssl pkey refused the private key: %v\n%s", err, out)
	}
	if out, err := openssl("pkey", "-in", privPath, "-passin", "file:"+wrongFile, "-noout"); err == nil {
		t.Errorf("openssl pkey read the private key with a wrong passphrase:\n%s", out)
	}
	if out, err := openssl("pkey", "-pubin", "-in", pubPath, "-noout"); err != nil {
		t.Fatalf("openssl pkey refused the public key: %v\n%s", err, out)
	}
	out, err := openssl("rsa", "-pubin", "-in", pubPath, "-noout", "-modulus")
	if err != nil {
		t.Fatalf("openssl rsa -modulus: %v\n%s", err, out)
	}
	if n := parseModulus(out); n.Cmp(key.N) != 0 {
		t.Errorf("openssl public modulus %x, want %x", n, key.N)
	}
	out, err = openssl("rsa", "-in", privPath, "-passin", "file:"+passFile, "-noout", "-modulus")
	if err != nil {
		t.Fatalf("openssl rsa -modulus on the private key: %v\n%s", err, out)
	}
	if n := parseModulus(out); n.Cmp(key.N) != 0 {
		t.Errorf("openssl private modulus %x, want %x", n, key.N)
	}
	out, err = openssl("pkey", "-in", privPath, "-passin", "file:"+passFile, "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl pkey -text: %v\n%s", err, out)
	}
	if !strings.Contains(out, "4096 bit") {
		t.Errorf("openssl does not see a 4096-bit key:\n%.200s", out)
	}

	// The other way: a key openssl re-encrypted (its own PBES2 defaults)
	// loads in Go.
	// (openssl reads -passout from the next line when both name one file.)
	passOutFile := filepath.Join(dir, "passout")
	if err := os.WriteFile(passOutFile, []byte(testkeys.Passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reenc := filepath.Join(dir, "openssl.pem")
	if out, err := openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", privPath,
		"-passin", "file:"+passFile, "-passout", "file:"+passOutFile, "-out", reenc); err != nil {
		t.Fatalf("openssl pkcs8 -topk8: %v\n%s", err, out)
	}
	got, err := identity.LoadPrivateKey(reenc, []byte(testkeys.Passphrase), nil)
	if err != nil {
		t.Fatalf("openssl-encrypted key: %v", err)
	}
	if !got.Equal(key) {
		t.Error("openssl-encrypted key decodes to another key")
	}
}

func TestPyCryptodomeLegacy(t *testing.T) {
	data := testkeys.File(t, "pycryptodome-legacy.pem")
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || !strings.Contains(block.Headers["DEK-Info"], "DES-EDE3-CBC") {
		t.Fatalf("fixture is not a legacy DES-EDE3-CBC PEM: %+v", block)
	}
	wantPub, err := identity.ParsePublicKey("pycryptodome-legacy.pub.pem", testkeys.File(t, "pycryptodome-legacy.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.ParsePrivateKey("pycryptodome-legacy.pem", data, []byte(testkeys.Passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(wantPub) {
		t.Error("legacy key's public key differs from pycryptodome-legacy.pub.pem")
	}
	if key.N.BitLen() != identity.KeyBits {
		t.Errorf("legacy key has %d bits", key.N.BitLen())
	}

	// Legacy PEM decryption only checks the padding, which a wrong
	// passphrase passes about once in 256 tries; the garbage that then
	// comes out must still be reported as a wrong passphrase. Try wrong
	// passphrases until several passed the padding check.
	const name = "legacy/key.pem"
	paddingPassed := 0
	for i := 0; i < 5000 && paddingPassed < 3; i++ {
		pass := fmt.Sprintf("%s-%d", wrongPassphrase, i)
		if i == 0 {
			pass = wrongPassphrase
		}
		//lint:ignore SA1019 checking which wrong passphrases slip through legacy padding.
		if _, err := x509.DecryptPEMBlock(block, []byte(pass)); err == nil { //nolint:staticcheck
			paddingPassed++
		}
		k, err := identity.ParsePrivateKey(name, data, []byte(pass))
		if k != nil || !errors.Is(err, identity.ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase #%d: got key %v, error %v; want ErrWrongPassphrase", i, k != nil, err)
		}
		if !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), pass) {
			t.Fatalf("wrong passphrase #%d: error %q must name the file and not the passphrase", i, err)
		}
	}
	if paddingPassed == 0 {
		t.Error("no wrong passphrase got past the legacy padding check: the garbage path is untested")
	}
	for _, pass := range []string{"", "test-only-passphras", "Test-only-passphrase", testkeys.Passphrase + " "} {
		_, err := identity.ParsePrivateKey(name, data, []byte(pass))
		checkErr(t, err, identity.ErrWrongPassphrase, name)
	}
}

func TestWrongPassphrasePBES2(t *testing.T) {
	// The real 600,000-iteration file, once.
	_, err := identity.ParsePrivateKey("private/server.pem", testkeys.File(t, "private/server.pem"), []byte(wrongPassphrase))
	checkErr(t, err, identity.ErrWrongPassphrase, "private/server.pem")

	// More wrong passphrases on a one-iteration copy, including the empty
	// one, which youmark/pkcs8 would read as "not encrypted".
	data := fastEncrypt(t, testkeys.Private(t, "1000"), testkeys.Passphrase)
	if k, err := identity.ParsePrivateKey("fast.pem", data, []byte(testkeys.Passphrase)); err != nil || !k.Equal(testkeys.Private(t, "1000")) {
		t.Fatalf("right passphrase: %v", err)
	}
	for _, pass := range []string{wrongPassphrase, "", "test-only-passphras", testkeys.Passphrase + "\n", strings.ToUpper(testkeys.Passphrase)} {
		t.Run(fmt.Sprintf("%q", pass), func(t *testing.T) {
			k, err := identity.ParsePrivateKey("fast.pem", data, []byte(pass))
			if k != nil {
				t.Error("got a key")
			}
			checkErr(t, err, identity.ErrWrongPassphrase, "fast.pem")
		})
	}
}

func TestKeySize(t *testing.T) {
	t.Run("private", func(t *testing.T) {
		_, err := identity.ParsePrivateKey("small-2048.pem", testkeys.File(t, "small-2048.pem"), []byte(testkeys.Passphrase))
		checkErr(t, err, identity.ErrKeySize, "small-2048.pem")
		if !strings.Contains(err.Error(), "2048") {
			t.Errorf("error %q does not say 2048", err)
		}
	})
	t.Run("public", func(t *testing.T) {
		_, err := identity.ParsePublicKey("small-2048.pub.pem", testkeys.File(t, "small-2048.pub.pem"))
		checkErr(t, err, identity.ErrKeySize, "small-2048.pub.pem")
		if !strings.Contains(err.Error(), "2048") {
			t.Errorf("error %q does not say 2048", err)
		}
	})
	t.Run("public file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "small.pem")
		if err := os.WriteFile(path, testkeys.File(t, "small-2048.pub.pem"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := identity.LoadPublicKey(path)
		checkErr(t, err, identity.ErrKeySize, path)
	})
}

func TestParsePrivateKeyMalformed(t *testing.T) {
	key := testkeys.Private(t, "1000")
	pkcs8DER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	real := testkeys.File(t, "private/server.pem")
	realBlock, _ := pem.Decode(real)
	fast := fastEncrypt(t, key, testkeys.Passphrase)
	legacy := func(dekInfo string, body []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{
			Type:    "PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": dekInfo},
			Bytes:   body,
		})
	}

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, identity.ErrMalformedKey},
		{"not PEM", []byte("this is not a key\n"), identity.ErrMalformedKey},
		{"unencrypted PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8DER}), identity.ErrMalformedKey},
		{"unencrypted PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), identity.ErrMalformedKey},
		{"public key", testkeys.File(t, "public/1000.pem"), identity.ErrMalformedKey},
		{"truncated PEM", real[:len(real)/2], identity.ErrMalformedKey},
		{"truncated DER", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: realBlock.Bytes[:len(realBlock.Bytes)/2]}), identity.ErrMalformedKey},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("\x30\x03garbage")}), identity.ErrMalformedKey},
		{"plain PKCS#8 labelled encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: pkcs8DER}), identity.ErrMalformedKey},
		{"ciphertext not whole blocks", mutatePBES2(t, fast, func(info *encryptedPrivateKeyInfo, _ *pbes2Params) {
			info.Data = info.Data[:len(info.Data)-1]
		}), identity.ErrMalformedKey},
		{"short IV", mutatePBES2(t, fast, func(_ *encryptedPrivateKeyInfo, p *pbes2Params) {
			iv, _ := asn1.Marshal([]byte("short"))
			p.Scheme.Parameters = asn1.RawValue{FullBytes: iv}
		}), identity.ErrMalformedKey},
		{"unknown cipher", mutatePBES2(t, fast, func(_ *encryptedPrivateKeyInfo, p *pbes2Params) {
			p.Scheme.Algorithm = asn1.ObjectIdentifier{1, 2, 3, 4}
		}), identity.ErrMalformedKey},
		{"EC key", fastEncrypt(t, ec, testkeys.Passphrase), identity.ErrNotRSA},
		{"legacy without DEK-Info", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte("12345678")}), identity.ErrMalformedKey},
		{"legacy unknown cipher", legacy("ROT13-CBC,0011223344556677", []byte("12345678")), identity.ErrMalformedKey},
		{"legacy bad IV", legacy("DES-EDE3-CBC,zz", []byte("12345678")), identity.ErrMalformedKey},
		{"legacy not whole blocks", legacy("DES-EDE3-CBC,0011223344556677", []byte("1234567")), identity.ErrMalformedKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "keys/" + strings.ReplaceAll(tc.name, " ", "_") + ".pem"
			var k *rsa.PrivateKey
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("ParsePrivateKey panicked: %v", r)
					}
				}()
				k, err = identity.ParsePrivateKey(name, tc.data, []byte(testkeys.Passphrase))
			}()
			if k != nil {
				t.Error("got a key")
			}
			checkErr(t, err, tc.want, name)
		})
	}

	t.Run("unencrypted says so", func(t *testing.T) {
		_, err := identity.ParsePrivateKey("plain.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8DER}), []byte(testkeys.Passphrase))
		if err == nil || !strings.Contains(err.Error(), "not encrypted") {
			t.Errorf("error %v does not say the key is not encrypted", err)
		}
	})
	t.Run("plain PKCS#8 labelled encrypted, empty passphrase", func(t *testing.T) {
		k, err := identity.ParsePrivateKey("plain.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: pkcs8DER}), nil)
		if k != nil {
			t.Fatal("an unencrypted key was accepted with an empty passphrase")
		}
		checkErr(t, err, identity.ErrWrongPassphrase, "plain.pem")
	})
}

func TestParsePublicKeyMalformed(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := testkeys.File(t, "public/1000.pem")
	block, _ := pem.Decode(pub)

	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, identity.ErrMalformedKey},
		{"not PEM", []byte("ssh-rsa AAAA...\n"), identity.ErrMalformedKey},
		{"EC key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), identity.ErrNotRSA},
		{"truncated PEM", pub[:len(pub)/2], identity.ErrMalformedKey},
		{"truncated DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes[:len(block.Bytes)/2]}), identity.ErrMalformedKey},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}), identity.ErrMalformedKey},
		{"garbage PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: []byte("garbage")}), identity.ErrMalformedKey},
		{"private key", testkeys.File(t, "private/1000.pem"), identity.ErrMalformedKey},
		{"certificate label", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), identity.ErrMalformedKey},
		{"two keys", append(bytes.Clone(pub), testkeys.File(t, "public/2000.pem")...), identity.ErrMalformedKey},
		{"text after the key", append(bytes.Clone(pub), "trailing\n"...), identity.ErrMalformedKey},
	}
	// Text before the block (openssl's "Bag Attributes") and white space
	// after it are fine.
	if _, err := identity.ParsePublicKey("pub/bag.pem", append([]byte("Bag Attributes\n"), append(bytes.Clone(pub), "\n\n"...)...)); err != nil {
		t.Errorf("key with text before and blank lines after: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "pub/" + strings.ReplaceAll(tc.name, " ", "_") + ".pem"
			var k *rsa.PublicKey
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("ParsePublicKey panicked: %v", r)
					}
				}()
				k, err = identity.ParsePublicKey(name, tc.data)
			}()
			if k != nil {
				t.Error("got a key")
			}
			checkErr(t, err, tc.want, name)
		})
	}
}

func TestLoadPrivateKeyMode(t *testing.T) {
	key := testkeys.Private(t, "1000")
	data := fastEncrypt(t, key, testkeys.Passphrase)
	write := func(t *testing.T, mode fs.FileMode) string {
		path := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		mode     fs.FileMode
		insecure bool
	}{
		{0o600, false},
		{0o400, false},
		{0o644, true},
		{0o640, true},
		{0o604, true},
		{0o620, true},
	} {
		t.Run(fmt.Sprintf("%04o", tc.mode), func(t *testing.T) {
			path := write(t, tc.mode)
			got, err := identity.LoadPrivateKey(path, []byte(testkeys.Passphrase), nil)
			if !tc.insecure {
				if err != nil {
					t.Fatal(err)
				}
				if !got.Equal(key) {
					t.Error("loaded another key")
				}
				return
			}
			// Refused by default: the error names the file, its mode and the fix.
			checkErr(t, err, identity.ErrInsecureMode, path)
			for _, want := range []string{fmt.Sprintf("%04o", tc.mode), "chmod 600 " + path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			// Allowed explicitly: it loads, after one warning saying the same.
			var warnings []string
			got, err = identity.LoadPrivateKey(path, []byte(testkeys.Passphrase), func(s string) { warnings = append(warnings, s) })
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(key) {
				t.Error("loaded another key")
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], path) || !strings.Contains(warnings[0], fmt.Sprintf("%04o", tc.mode)) {
				t.Fatalf("got warnings %q, want one naming %s and its mode", warnings, path)
			}
			noSecrets(t, warnings[0])
		})
	}

	t.Run("mode checked before the passphrase", func(t *testing.T) {
		path := write(t, 0o644)
		_, err := identity.LoadPrivateKey(path, []byte(wrongPassphrase), nil)
		checkErr(t, err, identity.ErrInsecureMode, path)
		warned := false
		_, err = identity.LoadPrivateKey(path, []byte(wrongPassphrase), func(string) { warned = true })
		checkErr(t, err, identity.ErrWrongPassphrase, path)
		if !warned {
			t.Error("no warning for a world-readable key with a wrong passphrase")
		}
	})
}

func TestReadSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(path, []byte(wrongPassphrase+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	_, err := identity.ReadSecretFile("passphrase file", path, nil)
	checkErr(t, err, identity.ErrInsecureMode, path)
	if !strings.HasPrefix(err.Error(), "passphrase file "+path+" has mode 0644") {
		t.Errorf("error %q does not start by naming the passphrase file and its mode", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := identity.ReadSecretFile("passphrase file", path, nil)
	if err != nil || string(got) != wrongPassphrase+"\n" {
		t.Fatalf("ReadSecretFile of a 0600 file = %q, %v", got, err)
	}
	_, err = identity.ReadSecretFile("passphrase file", path+".missing", nil)
	checkErr(t, err, fs.ErrNotExist, path+".missing")
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "key.pem")
	warned := false
	_, err := identity.LoadPrivateKey(path, []byte(testkeys.Passphrase), func(string) { warned = true })
	checkErr(t, err, fs.ErrNotExist, path)
	if warned {
		t.Error("warned about a missing file")
	}
	_, err = identity.LoadPublicKey(path)
	checkErr(t, err, fs.ErrNotExist, path)
}

func TestParseID(t *testing.T) {
	valid := []string{"server", "1000", "2000", "a.b_c-1", "A", "9", "x..y", strings.Repeat("a", 64)}
	for _, s := range valid {
		t.Run("valid/"+s, func(t *testing.T) {
			id, err := identity.ParseID(s)
			if err != nil {
				t.Fatalf("ParseID(%q): %v", s, err)
			}
			if string(id) != s || id.String() != s {
				t.Errorf("ParseID(%q) = %q", s, id)
			}
		})
	}
	invalid := []string{
		"", ".", "..", "../x", "a/b", "/abs", `a\b`, "-x", "_x", ".hidden",
		strings.Repeat("a", 65), "a b", "é", "server\n", "\nserver", "a\x00b", "a:b", " server",
	}
	for _, s := range invalid {
		t.Run(fmt.Sprintf("invalid/%q", s), func(t *testing.T) {
			id, err := identity.ParseID(s)
			if err == nil {
				t.Fatalf("ParseID(%q) = %q, want an error", s, id)
			}
			if id != "" {
				t.Errorf("ParseID(%q) returned id %q with its error", s, id)
			}
		})
	}
	for _, id := range []identity.ID{identity.ServerID, identity.RequesterID, identity.VerifierID} {
		if _, err := identity.ParseID(string(id)); err != nil {
			t.Errorf("the design's id %q is invalid: %v", id, err)
		}
	}
}
