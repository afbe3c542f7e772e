package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// protocolHTTP is the rfc3161 flow's FlowResult.Protocol.
const protocolHTTP = "http (" + tsa.ContentTypeQuery + ")"

// httpOpenLoopConns bounds each requester's HTTP connections in the open
// loop: a request due while all are busy waits for one, and the wait
// counts in its latency (the closed loop never has more connections than
// tokens in flight).
const httpOpenLoopConns = 1024

// Report.TokenCheck: how the tokens were checked.
const (
	tokenCheckTsnode = "signature, chain, signing-certificate, imprint, nonce; tsnode's trust rule (PROTOCOL.md §14.5: the root is the server's identity key) on the first token of each signing certificate and on every --reverify-th"
	tokenCheckChain  = "the standard check (CMS signature, X.509 chain to the given chain's root at genTime, signing-certificate attribute), imprint, nonce"
)

// tokenCheck checks resp, the DER TimeStampResp answering a request for
// the SHA-256 hash with nonce; full says whether it got tsnode's full
// check.
type tokenCheck func(resp, hash []byte, nonce *big.Int) (full bool, err error)

// exchange sends a DER TimeStampReq and returns the DER TimeStampResp.
type exchange func(ctx context.Context, der []byte) ([]byte, error)

// checker is how this run checks tokens: the standard chain check for a
// server given by URL, tsnode's for a tsnode server.
func (r *runner) checker() tokenCheck {
	if r.tsaChain != nil {
		return func(resp, hash []byte, nonce *big.Int) (bool, error) {
			return false, r.tsaChain.check(resp, hash, nonce)
		}
	}
	return r.tsnodeCheck.check
}

// tokenRequest is the request of `tsnode stamp --rfc3161`: the SHA-256
// hash, a random 128-bit nonce, certReq, no policy.
func tokenRequest(hash []byte) (der []byte, nonce *big.Int, err error) {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	nonce = new(big.Int).SetBytes(b[:])
	q := &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: hash, Certificates: true, Nonce: nonce}
	if der, err = q.Marshal(); err != nil {
		return nil, nil, fmt.Errorf("making the RFC 3161 request: %w", err)
	}
	return der, nonce, nil
}

// tokenStamper asks for a token through ex and checks it: a token that
// fails its check is a failed request.
func tokenStamper(ex exchange, check tokenCheck) stampFunc {
	return func(ctx context.Context, hash []byte) (stamped, error) {
		der, nonce, err := tokenRequest(hash)
		if err != nil {
			return stamped{}, err
		}
		resp, err := ex(ctx, der)
		if err != nil {
			return stamped{}, err
		}
		full, err := check(resp, hash, nonce)
		return stamped{reverified: full}, err
	}
}

// httpTokenStampers returns one stamper per requester, each an HTTP
// client with its own connection pool, asking the RFC 3161 server at u;
// closeAll closes their idle connections.
func (r *runner) httpTokenStampers(u string) (stampers []stampFunc, closeAll func()) {
	cfg := r.cfg
	conns := (cfg.InFlight + cfg.Requesters - 1) / cfg.Requesters
	if cfg.Open() {
		conns = httpOpenLoopConns
	}
	var transports []*http.Transport
	check := r.checker()
	for range cfg.Requesters {
		t := &http.Transport{
			MaxConnsPerHost: conns, MaxIdleConns: conns, MaxIdleConnsPerHost: conns,
			IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		}
		transports = append(transports, t)
		stampers = append(stampers, tokenStamper(httpExchange(&http.Client{Transport: t}, u), check))
	}
	return stampers, func() {
		for _, t := range transports {
			t.CloseIdleConnections()
		}
	}
}

// httpExchange POSTs a DER TimeStampReq to u (RFC 3161 §3.4). Anything
// but HTTP 200 with application/timestamp-reply and a body of at most
// protocol.MaxTSAResponseSize bytes is an error.
func httpExchange(client *http.Client, u string) exchange {
	return func(ctx context.Context, der []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(der))
		if err != nil {
			return nil, fmt.Errorf("TSA URL: %w", err)
		}
		req.Header.Set("Content-Type", tsa.ContentTypeQuery)
		req.Header.Set("Accept", tsa.ContentTypeReply)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot reach the TSA: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxTSAResponseSize+1))
		switch {
		case err != nil:
			return nil, fmt.Errorf("reading the TSA's answer: %w", err)
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("the TSA answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
		case resp.Header.Get("Content-Type") != tsa.ContentTypeReply:
			return nil, fmt.Errorf("the TSA answered content type %q, want %s", resp.Header.Get("Content-Type"), tsa.ContentTypeReply)
		case len(body) > protocol.MaxTSAResponseSize:
			return nil, fmt.Errorf("the TSA's answer is larger than %d bytes", protocol.MaxTSAResponseSize)
		}
		return body, nil
	}
}

// p2pTokenStampers returns one stamper per requester host, each asking
// server over /tsnode/rfc3161/1.0.0, one stream per token.
func (r *runner) p2pTokenStampers(hosts []host.Host, server peer.ID) []stampFunc {
	check := r.checker()
	var stampers []stampFunc
	for _, h := range hosts {
		stampers = append(stampers, tokenStamper(func(ctx context.Context, der []byte) ([]byte, error) {
			return tsa.Request(ctx, h, server, der)
		}, check))
	}
	return stampers
}
