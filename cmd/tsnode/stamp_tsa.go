package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// stampTSAFlags are stamp's RFC 3161 flags (PROTOCOL.md §14).
var stampTSAFlags = flagGroup{"RFC 3161", func(fs *flag.FlagSet, f *roleFlags) {
	fs.BoolVar(&f.req.rfc3161, "rfc3161", false, "ask for an RFC 3161 token instead of a receipt: write <file>.tsr (a DER TimeStampResp for SHA-256, a random nonce, with certificates), checked as verify --rfc3161 does, over "+tsa.ProtocolID+" to --server")
	fs.StringVar(&f.req.tsaURL, "tsa-url", "", "with --rfc3161, ask this RFC 3161 `URL` over HTTP instead (e.g. http://127.0.0.1:8318/); needs no --server and no private key; implies --rfc3161")
}}

// tsaExchange sends a DER TimeStampReq and returns the DER TimeStampResp.
type tsaExchange func(ctx context.Context, der []byte) ([]byte, error)

// stampRFC3161 asks for a token for each of f.files through ask, checks
// it with trust (and, over libp2p, that it is the server's), and writes
// <file>.tsr (never over an existing one).
func stampRFC3161(ctx context.Context, f *roleFlags, trust *protocol.Trust, server identity.ID, ask tsaExchange, stdout, stderr io.Writer) error {
	if f.out != "" {
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	failed := 0
	for _, doc := range f.files {
		out := documentJSON{File: doc}
		tok, path, err := stampOneRFC3161(ctx, f, trust, server, ask, doc, &out)
		if err != nil {
			failed++
			out.Error = err.Error()
		} else {
			serial := tok.Serial
			out.Receipt, out.ServerID, out.Serial, out.Time, out.OK = path, string(tok.ServerID), &serial, protocol.FormatTime(tok.Time), true
		}
		switch {
		case f.req.json:
			writeJSONLine(stdout, out)
		case err != nil:
			fmt.Fprintf(stdout, "%s: FAILED: %v\n", doc, err)
		default:
			fmt.Fprintf(stdout, "%s\n  token      %s\n  stamped    %s  serial %d  by %s\n", doc, path, out.Time, tok.Serial, tok.ServerID)
		}
	}
	summary := stdout
	if f.req.json {
		summary = stderr
	}
	fmt.Fprintf(summary, "%d of %d documents stamped (RFC 3161)\n", len(f.files)-failed, len(f.files))
	if failed > 0 {
		return errReported
	}
	return nil
}

func stampOneRFC3161(ctx context.Context, f *roleFlags, trust *protocol.Trust, server identity.ID, ask tsaExchange, doc string, out *documentJSON) (*protocol.TSAToken, string, error) {
	hash, err := protocol.HashFile(doc)
	if err != nil {
		return nil, "", fmt.Errorf("cannot read document: %w", err)
	}
	out.SHA256 = fmt.Sprintf("%x", hash)
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, "", err
	}
	q := &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: hash, Certificates: true, Nonce: nonce}
	der, err := q.Marshal()
	if err != nil {
		return nil, "", fmt.Errorf("making the request: %w", err)
	}
	timeout := f.timeout
	if timeout == 0 {
		timeout = tsa.StreamTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := ask(rctx, der)
	if err != nil {
		return nil, "", err
	}
	token, err := protocol.ParseTSAResponse(resp)
	if err != nil {
		return nil, "", err
	}
	tok, err := trust.CheckTSAToken(token, nil, func(h crypto.Hash) ([]byte, error) {
		if h != crypto.SHA256 {
			return nil, fmt.Errorf("%w: the token's imprint is %s, the request's SHA-256", protocol.ErrReplyMismatch, protocol.TSAHashName(h))
		}
		return hash, nil
	})
	if err != nil {
		return nil, "", err
	}
	if !bytes.Equal(tok.Nonce, nonceContent(nonce)) {
		return nil, "", fmt.Errorf("%w: the token's nonce is not the request's", protocol.ErrReplyMismatch)
	}
	if server != "" && tok.ServerID != server {
		return nil, "", fmt.Errorf("%w: the token is signed by %s, not by the server asked (%s)", protocol.ErrReplyMismatch, tok.ServerID, server)
	}
	base := doc
	if f.out != "" {
		base = filepath.Join(f.out, filepath.Base(doc))
	}
	path, err := durable.CreateNew(base, ".tsr", resp, 0o644)
	if err != nil {
		err = fmt.Errorf("cannot write the token: %w", err)
	}
	return tok, path, err
}

// nonceContent is the content octets of the DER INTEGER n (n ≥ 0).
func nonceContent(n *big.Int) []byte {
	b := n.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// httpTSA asks the RFC 3161 server at url over HTTP.
func httpTSA(url string) tsaExchange {
	client := &http.Client{Timeout: tsa.StreamTimeout}
	return func(ctx context.Context, der []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(der))
		if err != nil {
			return nil, fmt.Errorf("--tsa-url: %w", err)
		}
		req.Header.Set("Content-Type", tsa.ContentTypeQuery)
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("cannot reach the TSA: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxTSAResponseSize+1))
		if err != nil {
			return nil, fmt.Errorf("reading the TSA's answer: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("the TSA answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
		}
		if ct := resp.Header.Get("Content-Type"); ct != tsa.ContentTypeReply {
			return nil, fmt.Errorf("the TSA answered content type %q, want %s", ct, tsa.ContentTypeReply)
		}
		if len(body) > protocol.MaxTSAResponseSize {
			return nil, fmt.Errorf("the TSA's answer is larger than %d bytes", protocol.MaxTSAResponseSize)
		}
		return body, nil
	}
}

// runStampRFC3161HTTP is stamp --tsa-url: no identity, only the
// directory and the trust.
func runStampRFC3161HTTP(ctx context.Context, f *roleFlags, stdout, stderr io.Writer) error {
	trust, err := loadTrust(f.keys, f.trust)
	if err != nil {
		return err
	}
	return stampRFC3161(ctx, f, trust, "", httpTSA(f.req.tsaURL), stdout, stderr)
}

// runStampRFC3161 is stamp --rfc3161 over libp2p to --server.
func runStampRFC3161(ctx context.Context, id *node.Identity, f *roleFlags, stdout, stderr io.Writer) error {
	trust, err := f.trust.policy(id.Dir, id.Retired)
	if err != nil {
		return err
	}
	r, err := node.NewRequester(id, node.RequesterConfig{Trust: trust, ServerID: identity.ID(f.serverID), ServerAddr: f.server, Listen: f.listen, OneShot: true})
	if err != nil {
		return err
	}
	defer r.Close()
	cctx, cancel := context.WithTimeout(ctx, cmpDuration(f.timeout, node.DefaultConnectTimeout))
	err = r.Connect(cctx)
	cancel()
	if err != nil {
		return err
	}
	return stampRFC3161(ctx, f, trust, identity.ID(f.serverID), r.RequestRFC3161, stdout, stderr)
}

// cmpDuration is d, or def when d is 0.
func cmpDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return min(d, def)
}
