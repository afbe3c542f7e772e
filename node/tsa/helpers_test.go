package tsa

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
)

// fixture is a running TSA over HTTP on loopback, for the test key of
// "server", with its keys and certificates in dir.
type fixture struct {
	dir, keys, data string
	url             string
	svc             *Service
	log             *merklelog.Log
	auth            *authority.Authority
	k               *Keys
}

func newFixture(t *testing.T, mode string, opts ...authority.Option) *fixture {
	t.Helper()
	return newFixtureWith(t, &Config{Mode: mode}, Options{}, opts...)
}

// newFixtureWith is newFixture with the certificates of cfg (its
// directories, id and key are the fixture's) and the options o: with a
// cfg.Lifetime, the service renews them (o.Renew).
func newFixtureWith(t *testing.T, cfg *Config, o Options, opts ...authority.Option) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	f.keys, f.data = filepath.Join(f.dir, "keys"), filepath.Join(f.dir, "data")
	key := testkeys.Private(t, "server")
	cfg.KeysDir, cfg.DataDir, cfg.ID, cfg.Key = f.keys, f.data, "server", key
	k, err := cfg.Ensure(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Lifetime != 0 {
		o.Renew = cfg
	}
	f.k = k
	f.log = testnet.OpenLog(t, f.data)
	a, err := authority.New(f.log, authority.SignerFor(key), testnet.Entry(t, "server"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.auth = a
	t.Cleanup(func() { a.Close() })
	o.Accuracy = authority.DefaultClockTolerance
	svc, err := New(nil, a, k, o)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	ln, err := ListenHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc.ServeHTTP(ln)
	t.Cleanup(func() { svc.Close() })
	f.url = "http://" + ln.Addr().String()
	return f
}

// post sends body to path with content type ct and returns the status
// and the body of the answer.
func (f *fixture) post(t *testing.T, path, ct string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(f.url+path, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != ContentTypeReply {
		t.Fatalf("POST %s: content type %q", path, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, b.Bytes()
}

// openssl runs openssl in dir and returns its combined output; it fails
// the test if openssl fails, unless fail is set.
func openssl(t *testing.T, dir string, fail bool, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if (err != nil) != fail {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func needOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
