package bench

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// tsaSigner is a TSASigner under the test key of id, and its chain.
func tsaSigner(t *testing.T, id identity.ID) (*protocol.TSASigner, []*x509.Certificate) {
	t.Helper()
	key := testkeys.Private(t, id)
	now := time.Now()
	root, err := protocol.NewTSARoot(id, key, now)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := protocol.NewTSALeafCert(id, root, key, &ec.PublicKey, now, protocol.TSALeafValidity)
	if err != nil {
		t.Fatal(err)
	}
	s := &protocol.TSASigner{Cert: leaf, Key: ec, Chain: []*x509.Certificate{root}, Policy: protocol.DefaultTSAPolicy, Accuracy: time.Second}
	return s, []*x509.Certificate{leaf, root}
}

// grant is the TimeStampResp of s for imprint and nonce (content octets).
func grant(t *testing.T, s *protocol.TSASigner, imprint, nonce []byte, certReq bool) []byte {
	t.Helper()
	l := &protocol.TSALeaf{Hash: crypto.SHA256, Imprint: imprint, Time: time.Now().Truncate(time.Millisecond), Serial: 9,
		Policy: protocol.DefaultTSAPolicy, Nonce: nonce, Via: protocol.TSAViaHTTP}
	token, err := s.Token(l, certReq)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.EncodeTSAGranted(token)
}

func TestChainCheck(t *testing.T) {
	s, chain := tsaSigner(t, "server")
	c, err := newChainCheck(chain)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256([]byte("doc"))
	nonce := big.NewInt(0x81) // content 00 81: a leading zero
	for _, certReq := range []bool{true, false} {
		if err := c.check(grant(t, s, hash[:], nonceContent(nonce), certReq), hash[:], nonce); err != nil {
			t.Fatalf("certReq %v: %v", certReq, err)
		}
	}
	good := grant(t, s, hash[:], nonceContent(nonce), true)
	other := sha256.Sum256([]byte("other"))
	if err := c.check(good, other[:], nonce); !errors.Is(err, protocol.ErrReplyMismatch) {
		t.Errorf("another document's hash: %v", err)
	}
	if err := c.check(good, hash[:], big.NewInt(7)); !errors.Is(err, protocol.ErrReplyMismatch) {
		t.Errorf("another nonce: %v", err)
	}
	// The signature covers the TSTInfo: flip a byte of it.
	bad := bytes.Clone(good)
	i := bytes.Index(bad, hash[:])
	bad[i] ^= 1
	if err := c.check(bad, hash[:], nonce); !errors.Is(err, errTokenCheck) {
		t.Errorf("a changed TSTInfo: %v", err)
	}
	// Another authority's token does not chain to this root.
	s2, _ := tsaSigner(t, "1000")
	if err := c.check(grant(t, s2, hash[:], nonceContent(nonce), true), hash[:], nonce); !errors.Is(err, errTokenCheck) || !strings.Contains(err.Error(), "does not chain") {
		t.Errorf("another authority's token: %v", err)
	}
	rej := protocol.EncodeTSARejection(&protocol.TSAError{Failure: protocol.TSABadAlg, Reason: "no"})
	if err := c.check(rej, hash[:], nonce); !errors.Is(err, protocol.ErrRefused) {
		t.Errorf("a rejection: %v", err)
	}
	for _, junk := range [][]byte{nil, {0x30, 0x00}, []byte("not DER"), good[:len(good)/2]} {
		if err := c.check(junk, hash[:], nonce); err == nil {
			t.Errorf("%x: accepted", junk)
		}
	}
	if _, err := newChainCheck(chain[:1]); err == nil || !strings.Contains(err.Error(), "not a self-signed root") {
		t.Errorf("a chain without its root: %v", err)
	}
}

func TestTsnodeCheck(t *testing.T) {
	trust, err := protocol.NewTrust(testkeys.Directory(t, "server", "1000"), nil, "server")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := tsaSigner(t, "server")
	c := &tsnodeCheck{trust: trust, server: "server", every: 3}
	hash := sha256.Sum256([]byte("doc"))
	nonce := big.NewInt(12345)
	var fulls []bool
	for range 6 {
		full, err := c.check(grant(t, s, hash[:], nonceContent(nonce), true), hash[:], nonce)
		if err != nil {
			t.Fatal(err)
		}
		fulls = append(fulls, full)
	}
	// The first establishes the chain, then every third.
	if want := []bool{true, false, true, false, false, true}; !equalBools(fulls, want) {
		t.Errorf("full checks %v, want %v", fulls, want)
	}
	// Both paths refuse a wrong nonce.
	for range 3 {
		if _, err := c.check(grant(t, s, hash[:], nonceContent(nonce), true), hash[:], big.NewInt(1)); !errors.Is(err, protocol.ErrReplyMismatch) {
			t.Errorf("another nonce: %v", err)
		}
	}
	// A root that is not the identity key of the server: untrusted, also
	// once a chain of the server is established.
	s2, _ := tsaSigner(t, "1000")
	if _, err := c.check(grant(t, s2, hash[:], nonceContent(nonce), true), hash[:], nonce); !errors.Is(err, protocol.ErrUntrustedSigner) {
		t.Errorf("another authority's token: %v", err)
	}
}

func equalBools(a, b []bool) bool {
	return len(a) == len(b) && string(boolBytes(a)) == string(boolBytes(b))
}

func boolBytes(a []bool) []byte {
	out := make([]byte, len(a))
	for i, v := range a {
		if v {
			out[i] = 1
		}
	}
	return out
}

// fakeTSA is an RFC 3161 server over HTTP that is not tsnode: it serves
// chain, and answers each request with answer.
func fakeTSA(t *testing.T, chain []*x509.Certificate, answer func(w http.ResponseWriter, der []byte)) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+tsa.PathCertChain, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(protocol.EncodeCertsPEM(chain...))
	})
	mux.HandleFunc("POST "+tsa.PathTimestamp, func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		answer(w, b.Bytes())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// signingTSA answers as an RFC 3161 server signing with s; wrongImprint
// makes it sign another imprint than asked.
func signingTSA(t *testing.T, s *protocol.TSASigner, wrongImprint bool) func(http.ResponseWriter, []byte) {
	policy, err := protocol.TSAPolicyDER(protocol.DefaultTSAPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return func(w http.ResponseWriter, der []byte) {
		req, err := protocol.ParseTSARequest(der, policy)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		imprint := req.Imprint
		if wrongImprint {
			imprint = bytes.Repeat([]byte{1}, len(imprint))
		}
		l := &protocol.TSALeaf{Hash: req.Hash, Imprint: imprint, Time: time.Now(), Serial: 1, Policy: s.Policy, Nonce: req.Nonce, Via: protocol.TSAViaHTTP}
		token, err := s.Token(l, req.CertReq)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", tsa.ContentTypeReply)
		_, _ = w.Write(protocol.EncodeTSAGranted(token))
	}
}

// tsaConfig loads a TSA given by URL: no keys, and the flow by default.
func tsaConfig(url string) Config {
	return Config{TSAURL: url, InFlight: 4, Duration: 20 * time.Second, Count: 20, MaxErrors: 5}
}

func TestRunTSAURL(t *testing.T) {
	signer, chain := tsaSigner(t, "server")
	srv := fakeTSA(t, chain, signingTSA(t, signer, false))

	// The chain fetched from the server, then given as a file.
	chainFile := filepath.Join(t.TempDir(), "chain.pem")
	if err := os.WriteFile(chainFile, protocol.EncodeCertsPEM(chain...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"", chainFile} {
		cfg := tsaConfig(srv.URL + tsa.PathTimestamp)
		cfg.TSAChain = file
		cfg.ServerPID = os.Getpid() // this process serves it
		rep, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		f := rep.Flows[0]
		if len(rep.Flows) != 1 || f.Flow != FlowRFC3161 || f.Stamps != 20 || f.Errors != 0 || f.TSAURL != cfg.TSAURL || f.ServerCPUPerStamp == nil || rep.TokenCheck != tokenCheckChain {
			t.Fatalf("chain file %q: %d tokens, %d errors (%s), url %q, CPU %v, check %q", file, f.Stamps, f.Errors, f.FirstError, f.TSAURL, f.ServerCPUPerStamp, rep.TokenCheck)
		}
	}

	// A chain file that is not the server's: every token fails its check.
	_, other := tsaSigner(t, "1000")
	if err := os.WriteFile(chainFile, protocol.EncodeCertsPEM(other...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := tsaConfig(srv.URL + tsa.PathTimestamp)
	cfg.TSAChain = chainFile
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Flows[0]; f.Stamps != 0 || f.Errors <= 5 || !strings.Contains(f.FirstError, "does not chain") {
		t.Fatalf("another root: %d tokens, %d errors (%s)", f.Stamps, f.Errors, f.FirstError)
	}
}

// Tokens that fail their check, and answers that are not tokens, are
// failed requests: counted, not panics, and the error budget ends the run.
func TestRunTSAFailures(t *testing.T) {
	s, chain := tsaSigner(t, "server")
	for name, tc := range map[string]struct {
		answer func(http.ResponseWriter, []byte)
		want   string
	}{
		"wrong imprint": {signingTSA(t, s, true), "imprint"},
		"HTTP 500": {func(w http.ResponseWriter, _ []byte) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, "HTTP 500: boom"},
		"wrong content type": {func(w http.ResponseWriter, _ []byte) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("{}"))
		}, `content type "application/json"`},
		"not DER": {func(w http.ResponseWriter, _ []byte) {
			w.Header().Set("Content-Type", tsa.ContentTypeReply)
			_, _ = w.Write([]byte("garbage"))
		}, "not one DER TimeStampResp"},
		"too large": {func(w http.ResponseWriter, _ []byte) {
			w.Header().Set("Content-Type", tsa.ContentTypeReply)
			_, _ = w.Write(make([]byte, protocol.MaxTSAResponseSize+1))
		}, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			var asked atomic.Int64
			srv := fakeTSA(t, chain, func(w http.ResponseWriter, der []byte) {
				asked.Add(1)
				tc.answer(w, der)
			})
			cfg := tsaConfig(srv.URL + tsa.PathTimestamp)
			cfg.Count = 1000
			rep, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			f := rep.Flows[0]
			if f.Stamps != 0 || f.Errors <= uint64(cfg.MaxErrors) || !strings.Contains(f.FirstError, tc.want) {
				t.Fatalf("%d tokens, %d errors, first %q; want none, more than %d errors, %q", f.Stamps, f.Errors, f.FirstError, cfg.MaxErrors, tc.want)
			}
			if n := asked.Load(); n >= 1000 {
				t.Errorf("%d requests: the error budget did not end the run", n)
			}
		})
	}
}

func TestTokenConfigRefused(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"chain without url":      func(c *Config) { c.TSAChain = "chain.pem" },
		"url and server":         func(c *Config) { c.ServerAddr = "/ip4/127.0.0.1/tcp/1" },
		"url with a stamp flow":  func(c *Config) { c.Flows = []string{FlowRFC3161, FlowSession} },
		"url with the p2p flow":  func(c *Config) { c.Flows = []string{FlowRFC3161P2P} },
		"url not http":           func(c *Config) { c.TSAURL = "ftp://127.0.0.1/" },
		"url without host":       func(c *Config) { c.TSAURL = "http:///x" },
		"http flow and a server": func(c *Config) { c.TSAURL, c.ServerAddr = "", "/ip4/127.0.0.1/tcp/1" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{TSAURL: "http://127.0.0.1:1/", Flows: []string{FlowRFC3161}}
			if name == "chain without url" {
				cfg.TSAURL = ""
			}
			mod(&cfg)
			cfg.Defaults()
			if err := cfg.Check(); err == nil {
				t.Fatalf("%+v accepted", cfg)
			}
		})
	}
	cfg := Config{TSAURL: "http://127.0.0.1:1/", TSAChain: "c.pem", ServerPID: 1, Flows: []string{FlowRFC3161}}
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		t.Errorf("a TSA URL with its chain and pid: %v", err)
	}
	// A TSA that cannot be reached for its chain: said before any load.
	if _, err := Run(t.Context(), Config{TSAURL: "http://127.0.0.1:1/", Flows: []string{FlowRFC3161}}); err == nil || !strings.Contains(err.Error(), "cannot fetch the TSA's chain") {
		t.Errorf("unreachable TSA: %v", err)
	}
}

// The JSON of a token flow says tokens, and reads back.
func TestTokenFlowJSON(t *testing.T) {
	rep := &Report{Mode: "closed", Flows: []*FlowResult{
		{Flow: FlowRFC3161, Stamps: 7, PerSecond: 3.5, ServerCPUPerStamp: ptr(42)},
		{Flow: FlowSession, Stamps: 8, PerSecond: 4, ServerCPUPerStamp: ptr(43)},
	}}
	b := rep.JSON()
	var raw struct{ Flows []map[string]any }
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	tok, st := raw.Flows[0], raw.Flows[1]
	if tok["tokens"] != 7.0 || tok["tokens_per_second"] != 3.5 || tok["server_cpu_us_per_token"] != 42.0 || tok["stamps"] != nil {
		t.Errorf("token flow: %v", tok)
	}
	if st["stamps"] != 8.0 || st["server_cpu_us_per_stamp"] != 43.0 || st["tokens"] != nil {
		t.Errorf("session flow: %v", st)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Flows[0].Stamps != 7 || *back.Flows[0].ServerCPUPerStamp != 42 || back.Flows[1].Stamps != 8 {
		t.Errorf("read back: %+v %+v", back.Flows[0], back.Flows[1])
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tokens/s", "CPU µs/token", "stamps/s", "CPU µs/stamp"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

// A short run of both RFC 3161 flows against a server spawned from the
// test binary with --http and --tsa.
func TestRunSpawnedTokens(t *testing.T) {
	cfg := testConfig(t)
	cfg.Flows = []string{FlowRFC3161, FlowRFC3161P2P}
	cfg.Count = 30
	cfg.Reverify = 4
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 2 || rep.TokenCheck != tokenCheckTsnode {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range rep.Flows {
		if f.Stamps != 30 || f.Errors != 0 || f.ServerCPU == nil || f.Latency.P50 <= 0 {
			t.Errorf("%s: %d tokens, %d errors (%s), CPU %v, p50 %v", f.Flow, f.Stamps, f.Errors, f.FirstError, f.ServerCPU, f.Latency.P50)
		}
		// The first token establishes the chain, then every fourth; the
		// in-flight tokens may race for the first.
		if f.Reverified < 30/4 || f.Reverified > 30/4+uint64(cfg.InFlight) {
			t.Errorf("%s: %d of %d tokens got the full check", f.Flow, f.Reverified, f.Stamps)
		}
	}
	if u := rep.Flows[0].TSAURL; !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("the spawned server's TSA URL %q", u)
	}
}
