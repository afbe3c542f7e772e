package tsa

import (
	"bytes"
	"crypto/sha512"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/protocol"
)

// openssl ts asks for a token of each digest over HTTP, reads the reply
// and verifies it against the root and the chain the server published;
// the token's serial is the leaf of the log that holds its imprint.
func TestOpenSSLOverHTTP(t *testing.T) {
	needOpenSSL(t)
	for _, mode := range []string{KeyECDSA, KeyIdentity} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, mode)
			w := t.TempDir()
			write(t, filepath.Join(w, "doc"), []byte("a document\n"))
			for i, md := range []string{"sha256", "sha384", "sha512"} {
				q := md + ".tsq"
				openssl(t, w, false, "ts", "-query", "-data", "doc", "-"+md, "-cert", "-out", q)
				der, err := os.ReadFile(filepath.Join(w, q))
				if err != nil {
					t.Fatal(err)
				}
				path := []string{"/", PathTimestamp}[i%2]
				code, resp := f.post(t, path, ContentTypeQuery, der)
				if code != http.StatusOK {
					t.Fatalf("%s: HTTP %d: %s", md, code, resp)
				}
				r := md + ".tsr"
				write(t, filepath.Join(w, r), resp)
				text := openssl(t, w, false, "ts", "-reply", "-in", r, "-text")
				if !strings.Contains(text, "Status: Granted.") || !strings.Contains(text, "Policy OID: "+protocol.DefaultTSAPolicy) ||
					!strings.Contains(text, "Accuracy: 0x02 seconds") || !strings.Contains(text, "TSA: DirName:/O=tsnode/CN=tsnode server TSA") {
					t.Fatalf("%s: reply:\n%s", md, text)
				}
				m := regexp.MustCompile(`Serial number: (0x[0-9A-F]+)`).FindStringSubmatch(text)
				if m == nil {
					t.Fatalf("%s: no serial in\n%s", md, text)
				}
				serial, _ := strconv.ParseUint(m[1][2:], 16, 64)
				leaf, err := f.log.Leaf(serial)
				if err != nil {
					t.Fatal(err)
				}
				l, err := protocol.ParseTSALeaf(leaf)
				if err != nil || protocol.TSAHashName(l.Hash) != "sha-"+md[3:] || l.Via != protocol.TSAViaHTTP {
					t.Fatalf("%s: leaf %d: %+v, %v", md, serial, l, err)
				}
				if md == "sha512" {
					want := sha512.Sum512([]byte("a document\n"))
					if !bytes.Equal(l.Imprint, want[:]) {
						t.Fatal("the leaf holds another imprint")
					}
				}
				if !strings.Contains(text, "Time stamp: ") {
					t.Fatal(text)
				}
				out := openssl(t, w, false, "ts", "-verify", "-queryfile", q, "-in", r, "-CAfile", RootPath(f.keys, "server"), "-untrusted", ChainPath(f.keys, "server"))
				if !strings.Contains(out, "Verification: OK") {
					t.Fatalf("%s: verify: %s", md, out)
				}
			}
			if f.log.Size() != 3 {
				t.Fatalf("log holds %d leaves, want 3", f.log.Size())
			}
		})
	}
}

// Each refusal comes back as a TimeStampResp with its status and failure
// info, and nothing is logged.
func TestOpenSSLRefusals(t *testing.T) {
	needOpenSSL(t)
	f := newFixture(t, KeyECDSA)
	w := t.TempDir()
	write(t, filepath.Join(w, "doc"), []byte("a document\n"))
	write(t, filepath.Join(w, "garbage.tsq"), []byte("this is not DER"))
	openssl(t, w, false, "ts", "-query", "-data", "doc", "-md5", "-out", "md5.tsq")
	openssl(t, w, false, "ts", "-query", "-data", "doc", "-sha1", "-out", "sha1.tsq")
	openssl(t, w, false, "ts", "-query", "-data", "doc", "-sha256", "-tspolicy", "1.2.3.4", "-out", "policy.tsq")
	for _, c := range []struct{ q, info string }{
		{"md5.tsq", "unrecognized or unsupported algorithm identifier"},
		{"sha1.tsq", "unrecognized or unsupported algorithm identifier"},
		{"policy.tsq", "the requested tsa policy is not supported"},
		{"garbage.tsq", "the data submitted has the wrong format"},
	} {
		der, err := os.ReadFile(filepath.Join(w, c.q))
		if err != nil {
			t.Fatal(err)
		}
		code, resp := f.post(t, "/", ContentTypeQuery, der)
		if code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", c.q, code)
		}
		r := c.q + ".tsr"
		write(t, filepath.Join(w, r), resp)
		text := openssl(t, w, false, "ts", "-reply", "-in", r, "-text")
		if !strings.Contains(text, "Status: Rejected.") || !strings.Contains(strings.ToLower(text), c.info) {
			t.Fatalf("%s: reply:\n%s", c.q, text)
		}
	}
	if f.log.Size() != 0 {
		t.Fatalf("refusals logged %d leaves", f.log.Size())
	}
}

func TestHTTPLimits(t *testing.T) {
	f := newFixture(t, KeyECDSA)
	if code, body := f.post(t, "/", "application/octet-stream", []byte{0x30, 0}); code != http.StatusUnsupportedMediaType {
		t.Fatalf("wrong content type: HTTP %d %s", code, body)
	}
	if code, _ := f.post(t, PathTimestamp, ContentTypeQuery, make([]byte, protocol.MaxTSARequestSize+1)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: HTTP %d", code)
	}
	if code, _ := f.post(t, "/certchain", ContentTypeQuery, nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /certchain: HTTP %d", code)
	}
	for _, p := range []string{"/", PathTimestamp, "/healthz", "/certchain", PathCertChain} {
		resp, err := http.Get(f.url + p)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		want := http.StatusOK
		if p == "/" || p == PathTimestamp {
			want = http.StatusMethodNotAllowed
		}
		if resp.StatusCode != want {
			t.Fatalf("GET %s: HTTP %d, want %d", p, resp.StatusCode, want)
		}
		if strings.Contains(p, "certchain") {
			certs, err := protocol.ParseCertsPEM(b.Bytes())
			if err != nil || len(certs) != 2 || !certs[0].Equal(f.k.Cert) || !certs[1].Equal(f.k.Root) {
				t.Fatalf("GET %s: %v", p, err)
			}
		}
	}
	if f.log.Size() != 0 {
		t.Fatalf("refused requests logged %d leaves", f.log.Size())
	}
}
