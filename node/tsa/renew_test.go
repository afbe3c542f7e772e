package tsa

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// recorder is a Metrics that keeps what it is told.
type recorder struct {
	mu       sync.Mutex
	answered map[string]int // via + " " + outcome
	notAfter []time.Time
	renewals []bool
}

func (r *recorder) Answered(via, outcome string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d <= 0 {
		outcome += " without a duration"
	}
	r.answered[via+" "+outcome]++
}

func (r *recorder) SigningCertificate(notAfter time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notAfter = append(r.notAfter, notAfter)
}

func (r *recorder) Renewal(ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.renewals = append(r.renewals, ok)
}

// bareToken asks f for a token of doc without certReq and returns its DER.
func bareToken(t *testing.T, f *fixture, doc []byte) []byte {
	t.Helper()
	q, err := timestamp.CreateRequest(strings.NewReader(string(doc)), &timestamp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	code, resp := f.post(t, "/", ContentTypeQuery, q)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d", code)
	}
	der, err := protocol.ParseTSAResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// published are the certificates of the files in f's keys/public/tsa.
func published(t *testing.T, f *fixture, paths ...string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := protocol.ParseCertsPEM(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		certs = append(certs, c...)
	}
	return certs
}

// A running service renews its signing certificate when it is due: new
// tokens and /certchain get the new one, the chain file holds it, the
// past file the old one, and a bare token signed before verifies with
// the past file (and not without it). Nothing due: nothing changes. The
// metrics follow.
func TestRenewWhileRunning(t *testing.T) {
	m := &recorder{answered: map[string]int{}}
	lifetime := 40 * time.Minute // renewed within its last 10 minutes
	f := newFixtureWith(t, &Config{Mode: KeyECDSA, Lifetime: lifetime}, Options{Metrics: m})
	doc := []byte("a document\n")
	digest := func(h crypto.Hash) ([]byte, error) { w := h.New(); w.Write(doc); return w.Sum(nil), nil }
	trust, err := protocol.NewTrust(testkeys.Directory(t, "server"), nil, "server")
	if err != nil {
		t.Fatal(err)
	}
	before := bareToken(t, f, doc)
	old := f.k.Cert

	if err := f.svc.Renew(time.Now().Add(lifetime / 2)); err != nil {
		t.Fatal(err)
	}
	if cur := f.svc.signing.Load().signer.Cert; !cur.Equal(old) {
		t.Fatal("renewed a certificate that was not due")
	}
	// Its last 10 minutes: due. (An hour of backdating keeps the new one
	// valid now.)
	if err := f.svc.Renew(time.Now().Add(lifetime - 9*time.Minute)); err != nil {
		t.Fatal(err)
	}
	renewed := f.svc.signing.Load().signer.Cert
	if renewed.Equal(old) || !renewed.NotAfter.After(old.NotAfter) {
		t.Fatalf("not renewed: notAfter %v, was %v", renewed.NotAfter, old.NotAfter)
	}
	after := bareToken(t, f, doc)

	chainFile := published(t, f, ChainPath(f.keys, "server"))
	if !chainFile[0].Equal(renewed) {
		t.Fatal("the chain file does not hold the renewed certificate")
	}
	resp, err := http.Get(f.url + "/certchain")
	if err != nil {
		t.Fatal(err)
	}
	served, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if certs, perr := protocol.ParseCertsPEM(served); err != nil || perr != nil || !certs[0].Equal(renewed) {
		t.Fatalf("/certchain after the renewal: %v %v", err, perr)
	}
	all := published(t, f, ChainPath(f.keys, "server"), RootPath(f.keys, "server"), PastPath(f.keys, "server"))
	for name, der := range map[string][]byte{"before": before, "after": after} {
		tok, err := trust.CheckTSAToken(der, all, digest)
		if err != nil {
			t.Fatalf("the token from %s the renewal: %v", name, err)
		}
		if want := map[string]*x509.Certificate{"before": old, "after": renewed}[name]; !tok.Signer.Equal(want) {
			t.Fatalf("the token from %s the renewal is signed by another certificate", name)
		}
	}
	current := published(t, f, ChainPath(f.keys, "server"))
	if _, err := trust.CheckTSAToken(before, current, digest); !errors.Is(err, protocol.ErrBadTSAChain) {
		t.Fatalf("the old token without the past file: %v", err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.renewals) != 1 || !m.renewals[0] {
		t.Fatalf("renewals recorded %v, want one done", m.renewals)
	}
	if len(m.notAfter) != 2 || !m.notAfter[0].Equal(old.NotAfter) || !m.notAfter[1].Equal(renewed.NotAfter) {
		t.Fatalf("signing certificate ends recorded %v", m.notAfter)
	}
	if m.answered["http granted"] != 2 || len(m.answered) != 1 {
		t.Fatalf("answers recorded %v, want 2 granted over http", m.answered)
	}
}

// A renewal that fails (a past file that does not parse: it is never
// replaced) keeps the old certificate in use, says why naming the file,
// and is counted; refusals are counted by their failure info and
// transport.
func TestRenewalFailureKeepsTheOldCertificate(t *testing.T) {
	m := &recorder{answered: map[string]int{}}
	lifetime := 40 * time.Minute
	f := newFixtureWith(t, &Config{Mode: KeyECDSA, Lifetime: lifetime}, Options{Metrics: m})
	write(t, PastPath(f.keys, "server"), []byte("damaged\n"))
	err := f.svc.Renew(time.Now().Add(lifetime - 9*time.Minute))
	if err == nil || !strings.Contains(err.Error(), PastPath(f.keys, "server")) {
		t.Fatalf("renewal with a damaged past file: %v", err)
	}
	if cur := f.svc.signing.Load().signer.Cert; !cur.Equal(f.k.Cert) {
		t.Fatal("a failed renewal changed the signing certificate")
	}
	if b, _ := os.ReadFile(ChainPath(f.keys, "server")); !strings.Contains(string(b), "CERTIFICATE") || !published(t, f, ChainPath(f.keys, "server"))[0].Equal(f.k.Cert) {
		t.Fatal("a failed renewal replaced the chain file")
	}
	resp := f.svc.Handle(context.Background(), request(t, []byte("still served")), protocol.TSAViaLibp2p, testnet.Entry(t, "1000"))
	if _, err := timestamp.ParseResponse(resp); err != nil {
		t.Fatalf("after a failed renewal: %v", err)
	}
	sha1, err := timestamp.CreateRequest(strings.NewReader("x"), &timestamp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Handle(context.Background(), sha1, protocol.TSAViaLibp2p, testnet.Entry(t, "1000"))
	f.post(t, "/", ContentTypeQuery, []byte("not DER"))
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.renewals) != 1 || m.renewals[0] {
		t.Fatalf("renewals recorded %v, want one failed", m.renewals)
	}
	want := map[string]int{"libp2p granted": 1, "libp2p badAlg": 1, "http badDataFormat": 1}
	if len(m.answered) != len(want) {
		t.Fatalf("answers recorded %v, want %v", m.answered, want)
	}
	for k, n := range want {
		if m.answered[k] != n {
			t.Fatalf("answers recorded %v, want %v", m.answered, want)
		}
	}
}
