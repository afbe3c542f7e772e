package protocol

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// cmsSigners are the two kinds of key a TSA signs with: its own ECDSA
// P-256 key, and (--tsa-key identity) the RSA-4096 identity key.
func cmsSigners(t testing.TB, now time.Time) map[string]*TSASigner {
	t.Helper()
	ec := signerAt(t, "server", now)
	key := testkeys.Private(t, "server")
	leaf, err := NewTSALeafCert("server", ec.Chain[0], key, &key.PublicKey, now, TSALeafValidity)
	if err != nil {
		t.Fatal(err)
	}
	rsa := *ec
	rsa.Cert, rsa.Key = leaf, key
	return map[string]*TSASigner{"ecdsa": ec, "rsa": &rsa}
}

func cmsLeaf(doc []byte, now time.Time) *TSALeaf {
	sum, _ := digestOf(doc)(crypto.SHA256)
	return &TSALeaf{Hash: crypto.SHA256, Imprint: sum, Time: now, Serial: 1 << 40, Policy: DefaultTSAPolicy, Nonce: []byte{0x00, 0xff, 0x01}, Via: TSAViaHTTP}
}

// pkcs7Token is the token as Token made it with pkcs7 before the direct
// encoder, to compare structures with.
func pkcs7Token(t *testing.T, s *TSASigner, l *TSALeaf, certReq bool) []byte {
	t.Helper()
	tst, err := s.TSTInfo(l)
	if err != nil {
		t.Fatal(err)
	}
	essV2, err := signingCertificateV2(s.Cert)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := pkcs7.NewSignedData(tst)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	sd.SetContentType(oidTSTInfo)
	sd.GetSignedData().Version = 3
	cfg := pkcs7.SignerInfoConfig{
		ExtraSignedAttributes: []pkcs7.Attribute{{Type: oidSigningCertificateV2, Value: asn1.RawValue{FullBytes: essV2}}},
		SkipCertificates:      !certReq,
	}
	if err := sd.AddSigner(s.Cert, s.Key, cfg); err != nil {
		t.Fatal(err)
	}
	if certReq {
		for _, c := range s.Chain {
			sd.AddCertificate(c)
		}
	}
	token, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// derTree lists the elements of der, depth first, as "depth tag" and the
// number of children or the content: what openssl asn1parse shows, but
// the lengths, which the size of an ECDSA signature changes. The content
// of a UTCTime (the signing time) and of the last element (the
// signature) are left out.
func derTree(t *testing.T, der []byte) []string {
	t.Helper()
	var out []string
	var walk func(s cryptobyte.String, depth int)
	walk = func(s cryptobyte.String, depth int) {
		for !s.Empty() {
			var body cryptobyte.String
			var tag cbasn1.Tag
			if !s.ReadAnyASN1(&body, &tag) {
				t.Fatalf("malformed DER at depth %d", depth)
			}
			if tag&0x20 == 0 { // primitive
				content := hex.EncodeToString(body)
				if tag == cbasn1.UTCTime {
					content = "*"
				}
				out = append(out, fmt.Sprintf("%d %02x %s", depth, uint8(tag), content))
				continue
			}
			var n int
			for c := body; !c.Empty(); n++ {
				var e cryptobyte.String
				if !c.ReadAnyASN1Element(&e, nil) {
					t.Fatalf("malformed DER at depth %d", depth+1)
				}
			}
			out = append(out, fmt.Sprintf("%d %02x/%d", depth, uint8(tag), n))
			walk(body, depth+1)
		}
	}
	walk(cryptobyte.String(der), 0)
	if len(out) > 0 {
		out[len(out)-1] = out[len(out)-1][:strings.LastIndexByte(out[len(out)-1], ' ')] + " sig"
	}
	return out
}

// signedAttrs are the encodings of the signed attributes of token, in the
// order they come, and whether it has a certificates field.
func signedAttrs(t *testing.T, token []byte) (attrs [][]byte, certs bool) {
	t.Helper()
	s := cryptobyte.String(token)
	var ci, sd, signers, si, set cryptobyte.String
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.SkipASN1(cbasn1.OBJECT_IDENTIFIER) || !ci.ReadASN1(&sd, cmsTag0) ||
		!sd.ReadASN1(&sd, cbasn1.SEQUENCE) || !sd.SkipASN1(cbasn1.INTEGER) || !sd.SkipASN1(cbasn1.SET) || !sd.SkipASN1(cbasn1.SEQUENCE) {
		t.Fatal("the token is not a SignedData")
	}
	certs = sd.PeekASN1Tag(cmsTag0)
	if !sd.SkipOptionalASN1(cmsTag0) || !sd.ReadASN1(&signers, cbasn1.SET) || !signers.ReadASN1(&si, cbasn1.SEQUENCE) ||
		!si.SkipASN1(cbasn1.INTEGER) || !si.SkipASN1(cbasn1.SEQUENCE) || !si.SkipASN1(cbasn1.SEQUENCE) || !si.ReadASN1(&set, cmsTag0) {
		t.Fatal("the token has no SignerInfo with signed attributes")
	}
	for !set.Empty() {
		var a cryptobyte.String
		if !set.ReadASN1Element(&a, cbasn1.SEQUENCE) {
			t.Fatal("a signed attribute is no SEQUENCE")
		}
		attrs = append(attrs, a)
	}
	return attrs, certs
}

// Tokens of both kinds of key, with and without certReq, parse and verify
// with pkcs7 and digitorus/timestamp and pass CheckTSAToken; their signed
// attributes are in DER order; and they are what pkcs7 made, element for
// element, but the empty certificates field (RFC 3161 §2.4.1).
func TestTSATokenCMS(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	doc := []byte("a document\n")
	l := cmsLeaf(doc, now)
	trust := trustOf(t, testkeys.Directory(t, "server"), "server")
	for name, s := range cmsSigners(t, now) {
		for _, certReq := range []bool{false, true} {
			what := fmt.Sprintf("%s, certReq %v", name, certReq)
			token, err := s.Token(l, certReq)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			p7, err := pkcs7.Parse(token)
			if err != nil {
				t.Fatalf("%s: pkcs7.Parse: %v", what, err)
			}
			if got := len(p7.Certificates); certReq && got != 2 || !certReq && got != 0 {
				t.Fatalf("%s: %d certificates", what, got)
			}
			p7.Certificates = append([]*x509.Certificate{s.Cert}, s.Chain...)
			if err := p7.Verify(); err != nil {
				t.Fatalf("%s: pkcs7 Verify: %v", what, err)
			}
			ts, err := timestamp.ParseResponse(EncodeTSAGranted(token))
			if err != nil || ts.SerialNumber.Uint64() != l.Serial || !ts.Time.Equal(now) || !bytes.Equal(ts.HashedMessage, l.Imprint) {
				t.Fatalf("%s: timestamp.ParseResponse: %v, %+v", what, err, ts)
			}
			var extra []*x509.Certificate
			if !certReq {
				extra = p7.Certificates
			}
			if _, err := trust.CheckTSAToken(token, extra, digestOf(doc)); err != nil {
				t.Fatalf("%s: CheckTSAToken: %v", what, err)
			}
			attrs, certs := signedAttrs(t, token)
			if len(attrs) != 4 || !slices.IsSortedFunc(attrs, bytes.Compare) || certs != certReq {
				t.Fatalf("%s: %d signed attributes, sorted %v; certificates field %v", what, len(attrs), slices.IsSortedFunc(attrs, bytes.Compare), certs)
			}
			old := derTree(t, pkcs7Token(t, s, l, certReq))
			if i := slices.Index(old, "3 a0/0"); !certReq && i >= 0 { // pkcs7 wrote an empty certificates field
				old = slices.Delete(old, i, i+1)
				old[slices.Index(old, "2 30/5")] = "2 30/4"
			}
			if got := derTree(t, token); !slices.Equal(got, old) {
				t.Fatalf("%s: the structure differs from pkcs7's:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(old, "\n"))
			}
		}
	}
}

// openssl ts -verify accepts the tokens, with the certificates in the
// token or given to it.
func TestTSATokenCMSOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	now := time.Now().Truncate(time.Second)
	doc := []byte("a document\n")
	l := cmsLeaf(doc, now)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, s := range cmsSigners(t, now) {
		root := write(name+".root.pem", EncodeCertsPEM(s.Chain...))
		chain := write(name+".chain.pem", EncodeCertsPEM(append([]*x509.Certificate{s.Cert}, s.Chain...)...))
		for _, certReq := range []bool{false, true} {
			token, err := s.Token(l, certReq)
			if err != nil {
				t.Fatal(err)
			}
			tsr := write(fmt.Sprintf("%s-%v.tsr", name, certReq), EncodeTSAGranted(token))
			out, err := exec.Command("openssl", "ts", "-verify", "-digest", hex.EncodeToString(l.Imprint), "-in", tsr,
				"-CAfile", root, "-untrusted", chain).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verification: OK") {
				t.Fatalf("%s, certReq %v: openssl ts -verify: %v\n%s", name, certReq, err, out)
			}
		}
	}
}

func BenchmarkTSAToken(b *testing.B) {
	now := time.Now()
	signers := cmsSigners(b, now)
	l := cmsLeaf([]byte("a document\n"), now)
	for _, c := range []struct {
		key     string
		certReq bool
	}{{"ecdsa", false}, {"ecdsa", true}, {"rsa", true}} {
		b.Run(fmt.Sprintf("%s/certReq=%v", c.key, c.certReq), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := signers[c.key].Token(l, c.certReq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
