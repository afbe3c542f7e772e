package tsa

import (
	"context"
	"crypto/x509"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

func request(t *testing.T, data []byte) []byte {
	t.Helper()
	q, err := timestamp.CreateRequest(strings.NewReader(string(data)), &timestamp.RequestOptions{Certificates: true})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// A peer of the directory gets a token over /tsnode/rfc3161/1.0.0; its
// leaf names it. A stranger's stream is reset.
func TestLibp2pStream(t *testing.T) {
	f := newFixture(t, KeyECDSA)
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			server := testnet.NewHost(t, "server", tr.Listen)
			svc, err := New(server, f.auth, f.k, Options{Dir: testkeys.Directory(t, "server", "1000")})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			client := testnet.ClientOf(t, "1000", server)
			resp, err := Request(testnet.Ctx(t), client, server.ID(), request(t, []byte("doc")))
			if err != nil {
				t.Fatal(err)
			}
			ts, err := timestamp.ParseResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := f.log.Leaf(ts.SerialNumber.Uint64())
			if err != nil {
				t.Fatal(err)
			}
			l, err := protocol.ParseTSALeaf(leaf)
			if err != nil || l.Via != protocol.TSAViaLibp2p || l.RequesterID != "1000" || !l.Time.Equal(ts.Time) {
				t.Fatalf("leaf %+v (%v), token time %v", l, err, ts.Time)
			}
			stranger := testnet.ClientOf(t, "outsider", server)
			if _, err := Request(testnet.Ctx(t), stranger, server.ID(), request(t, []byte("doc"))); err == nil {
				t.Fatal("a stranger got an answer")
			}
		})
	}
}

// A clock behind the log: timeNotAvailable; a draining service:
// systemFailure; neither is logged.
func TestClockBehindAndShutdown(t *testing.T) {
	now := time.Now()
	// The authority reads the clock from its own goroutines (the online
	// key's signer among them): the step back is an atomic.
	var behind atomic.Int64
	f := newFixture(t, KeyECDSA, authority.WithClock(func() time.Time { return now.Add(-time.Duration(behind.Load())) }))
	ok := f.svc.Handle(context.Background(), request(t, []byte("a")), protocol.TSAViaHTTP, testnet.Entry(t, "1000"))
	if _, err := timestamp.ParseResponse(ok); err != nil {
		t.Fatal(err)
	}
	behind.Store(int64(time.Hour))
	resp := f.svc.Handle(context.Background(), request(t, []byte("b")), protocol.TSAViaHTTP, testnet.Entry(t, "1000"))
	if _, err := timestamp.ParseResponse(resp); err == nil || !strings.Contains(err.Error(), timestamp.TimeNotAvailable.String()) {
		t.Fatalf("clock behind: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.svc.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	resp = f.svc.Handle(context.Background(), request(t, []byte("c")), protocol.TSAViaHTTP, testnet.Entry(t, "1000"))
	if _, err := timestamp.ParseResponse(resp); err == nil || !strings.Contains(err.Error(), timestamp.SystemFailure.String()) {
		t.Fatalf("draining: %v", err)
	}
	if f.log.Size() != 1 {
		t.Fatalf("log holds %d leaves, want 1", f.log.Size())
	}
}

// EnsureKeys makes the keys once, keeps them, and renews a signing
// certificate that ends within TSARenewBefore; what it replaces goes to
// the past file, once.
func TestEnsureKeys(t *testing.T) {
	dir := t.TempDir()
	keys := dir + "/keys"
	key := testkeys.Private(t, "server")
	now := time.Now()
	k1, err := EnsureKeys(keys, dir+"/data", "server", key, KeyECDSA, now)
	if err != nil || len(k1.Made) != 3 {
		t.Fatalf("made %v: %v", k1.Made, err)
	}
	if fi, err := os.Stat(KeyPath(dir + "/data")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signing key: %v %v", fi.Mode(), err)
	}
	k2, err := EnsureKeys(keys, dir+"/data", "server", key, KeyECDSA, now.Add(time.Hour))
	if err != nil || len(k2.Made) != 0 || !k2.Cert.Equal(k1.Cert) || !k2.Root.Equal(k1.Root) {
		t.Fatalf("second start made %v: %v", k2.Made, err)
	}
	k3, err := EnsureKeys(keys, dir+"/data", "server", key, KeyECDSA, now.Add(protocol.TSALeafValidity-protocol.TSARenewBefore))
	if err != nil || len(k3.Made) != 2 || k3.Made[0] != PastPath(keys, "server") || k3.Made[1] != ChainPath(keys, "server") || !k3.Root.Equal(k1.Root) {
		t.Fatalf("renewal made %v: %v", k3.Made, err)
	}
	past := readPast(t, keys)
	if len(past) != 2 || !past[0].Equal(k1.Cert) || !past[1].Equal(k1.Root) {
		t.Fatalf("past file after a renewal: %d certificates, want the old signing certificate and the root", len(past))
	}
	k4, err := EnsureKeys(keys, dir+"/data", "server", testkeys.Private(t, "1000"), KeyECDSA, now)
	if err != nil || k4.Root.Equal(k1.Root) || len(k4.Made) != 3 {
		t.Fatalf("another identity key (a rotation) made %v: %v", k4.Made, err)
	}
	// The root was there already: the rotation adds the renewed signing
	// certificate alone.
	past = readPast(t, keys)
	if len(past) != 3 || !past[2].Equal(k3.Cert) {
		t.Fatalf("past file after a rotation: %d certificates, want 3 ending with the last signing certificate", len(past))
	}
	if _, err := EnsureKeys(keys, dir+"/data", "server", key, "dsa", now); err == nil {
		t.Fatal("--tsa-key dsa accepted")
	}
	// A past file that does not parse is not replaced: renewing fails,
	// naming it.
	write(t, PastPath(keys, "server"), []byte("not PEM"))
	if _, err := EnsureKeys(keys, dir+"/data", "server", key, KeyECDSA, now); err == nil || !strings.Contains(err.Error(), PastPath(keys, "server")) {
		t.Fatalf("a damaged past file: %v", err)
	}
	if b, _ := os.ReadFile(PastPath(keys, "server")); string(b) != "not PEM" {
		t.Fatal("a damaged past file was replaced")
	}
}

func readPast(t *testing.T, keys string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(PastPath(keys, "server"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := protocol.ParseCertsPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}
