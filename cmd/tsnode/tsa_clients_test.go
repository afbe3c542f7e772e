package main

// Real RFC 3161 clients other than openssl ts, each asking a real tsnode
// server over --http: osslsigncode (Authenticode, a Debian package that
// .ci/run installs) and, where a JDK is installed, jarsigner.

import (
	"archive/zip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/node/tsa"
)

// needTool is the path of the program name, or skips the test.
func needTool(t *testing.T, name, why string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (%s)", name, why)
	}
	return p
}

// runTool runs a program in dir and returns its combined output and
// whether it exited 0.
func runTool(t *testing.T, dir, prog string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("%s: %v", prog, err)
	}
	return string(out), err == nil
}

// buildHelloPE cross-compiles a hello-world Windows executable into dir.
func buildHelloPE(t *testing.T, dir string) string {
	t.Helper()
	goTool := needTool(t, "go", "it builds the Windows executable to sign")
	src := filepath.Join(dir, "hello")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "go.mod"), "module hello\n\ngo 1.21\n")
	writeFile(t, filepath.Join(src, "main.go"), "package main\n\nfunc main() { println(\"hello\") }\n")
	exe := filepath.Join(dir, "hello.exe")
	cmd := exec.Command(goTool, "build", "-buildvcs=false", "-trimpath", "-ldflags=-s -w", "-o", exe, ".")
	cmd.Dir = src
	// GOFLAGS of the caller (say -race) would not build for Windows.
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building a Windows executable: %v\n%s", err, out)
	}
	return exe
}

// codeSigningCert writes a throwaway self-signed code-signing
// certificate and its ECDSA P-256 key (0600) into dir: cert.pem, key.pem.
func codeSigningCert(t *testing.T, dir string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "tsnode test code signing (test only)"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// waitLogged checks that serial is in the server's log (tsnode log
// --serial, as 1000), as an RFC 3161 leaf. The token is durable before it is
// answered; the head covering it may come a moment later.
func waitLogged(t *testing.T, keys, pass, server, serial string) {
	t.Helper()
	var res result
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		res = tsnode(t, nil, "log", "--keys", keys, "--passphrase-file", pass, "--server", server, "--serial", serial)
		if res.code == 0 || time.Now().After(deadline) {
			break
		}
	}
	if res.code != 0 || !strings.Contains(res.stdout, "serial "+serial+" is in the log: a rfc3161 leaf") {
		t.Fatalf("log --serial %s:\n%v", serial, res)
	}
}

// osslsigncode signs a Windows executable with a timestamp from a
// running server (-ts, RFC 3161) and verifies it with the server's root
// as its TSA root: the timestamp is valid, and in the log. With another
// TSA root the timestamp is not valid; asking with SHA-1 is refused by
// the server, and nothing is written.
func TestOsslsigncodeTimestamp(t *testing.T) {
	t.Parallel()
	ossl := needTool(t, "osslsigncode", ".ci/run installs it: apt-get install osslsigncode")
	keys, pass := keysDir(t, "server", "1000")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--http", "127.0.0.1:0")
	url := tsaURL(t, server)
	w := t.TempDir()
	exe := buildHelloPE(t, w)
	cert, key := codeSigningCert(t, w)

	out, ok := runTool(t, w, ossl, "sign", "-certs", cert, "-key", key, "-h", "sha256", "-ts", url, "-in", exe, "-out", "signed.exe")
	if !ok || !strings.Contains(out, "Succeeded") {
		t.Fatalf("osslsigncode sign -ts %s:\n%s", url, out)
	}
	out, ok = runTool(t, w, ossl, "verify", "-in", "signed.exe", "-CAfile", cert, "-TSA-CAfile", tsa.RootPath(keys, "server"))
	for _, want := range []string{"Timestamp Server Signature verification: ok", "Subject: /O=tsnode/CN=tsnode server TSA", "Signature verification: ok", "Succeeded"} {
		if !ok || !strings.Contains(out, want) {
			t.Fatalf("osslsigncode verify: want %q\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`Timestamp serial number: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode verify names no timestamp serial\n%s", out)
	}
	waitLogged(t, keys, pass, server.addrs["tcp"], m[1])

	// osslsigncode 2.9 still exits 0 when only the timestamp fails: the
	// verdict is in its output.
	out, _ = runTool(t, w, ossl, "verify", "-in", "signed.exe", "-CAfile", cert, "-TSA-CAfile", cert)
	if !strings.Contains(out, "Timestamp Server Signature verification: failed") || strings.Contains(out, "Timestamp Server Signature verification: ok") {
		t.Fatalf("osslsigncode verify with another TSA root: want the timestamp refused\n%s", out)
	}

	out, ok = runTool(t, w, ossl, "sign", "-certs", cert, "-key", key, "-h", "sha1", "-ts", url, "-in", exe, "-out", "sha1.exe")
	if ok || !strings.Contains(out, "SHA-1 is not accepted") {
		t.Fatalf("osslsigncode sign -h sha1: want the server's refusal\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(w, "sha1.exe")); err == nil {
		t.Fatal("osslsigncode wrote a file whose timestamp was refused")
	}
}

// writeJar writes a jar (a zip) of one entry.
func writeJar(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	e, err := z.Create("hello.txt")
	if err == nil {
		_, err = e.Write([]byte("hello\n"))
	}
	if err == nil {
		err = z.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// jarsigner -tsa signs a jar with a timestamp from a running server;
// jarsigner -verify -strict accepts it with the server's root in its
// keystore, and refuses it without. A policy the server does not serve
// is refused, and nothing is written. Skipped without a JDK.
func TestJarsignerTimestamp(t *testing.T) {
	t.Parallel()
	jarsigner := needTool(t, "jarsigner", "a JDK's; optional")
	keytool := needTool(t, "keytool", "a JDK's; optional")
	keys, pass := keysDir(t, "server")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--http", "127.0.0.1:0")
	url := tsaURL(t, server)
	w := t.TempDir()
	writeJar(t, filepath.Join(w, "app.jar"))
	const storepass = "test-only-storepass" // a throwaway keystore's
	keytoolOK := func(args ...string) {
		t.Helper()
		if out, ok := runTool(t, w, keytool, append(args, "-noprompt", "-storetype", "PKCS12", "-storepass", storepass)...); !ok {
			t.Fatalf("keytool %v:\n%s", args, out)
		}
	}
	keytoolOK("-genkeypair", "-keystore", "signer.p12", "-alias", "signer", "-keyalg", "EC", "-groupname", "secp256r1",
		"-dname", "CN=tsnode test jar signer (test only)", "-validity", "2", "-ext", "ExtendedKeyUsage=codeSigning")
	keytoolOK("-exportcert", "-rfc", "-keystore", "signer.p12", "-alias", "signer", "-file", "signer.pem")
	for _, store := range []string{"trusted.p12", "untrusted.p12"} {
		keytoolOK("-importcert", "-keystore", store, "-alias", "signer", "-file", "signer.pem")
	}
	keytoolOK("-importcert", "-keystore", "trusted.p12", "-alias", "tsnode-root", "-file", tsa.RootPath(keys, "server"))

	out, ok := runTool(t, w, jarsigner, "-keystore", "signer.p12", "-storepass", storepass, "-tsa", url, "-signedjar", "signed.jar", "app.jar", "signer")
	if !ok || !strings.Contains(out, "jar signed.") {
		t.Fatalf("jarsigner -tsa %s:\n%s", url, out)
	}
	out, ok = runTool(t, w, jarsigner, "-verify", "-strict", "-verbose", "-keystore", "trusted.p12", "-storepass", storepass, "signed.jar")
	if !ok || !strings.Contains(out, "jar verified.") || !strings.Contains(out, `Timestamped by "CN=tsnode server TSA, O=tsnode"`) {
		t.Fatalf("jarsigner -verify with the server's root:\n%s", out)
	}
	out, ok = runTool(t, w, jarsigner, "-verify", "-strict", "-keystore", "untrusted.p12", "-storepass", storepass, "signed.jar")
	if ok || !strings.Contains(out, "TSA certificate chain is invalid") {
		t.Fatalf("jarsigner -verify -strict without the server's root: want it refused\n%s", out)
	}
	out, ok = runTool(t, w, jarsigner, "-keystore", "signer.p12", "-storepass", storepass, "-tsa", url, "-tsapolicyid", "1.2.3.4",
		"-signedjar", "policy.jar", "app.jar", "signer")
	if ok || !strings.Contains(out, "policy is not supported") {
		t.Fatalf("jarsigner -tsapolicyid 1.2.3.4: want the server's refusal\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(w, "policy.jar")); err == nil {
		t.Fatal("jarsigner wrote a jar whose timestamp was refused")
	}
}
