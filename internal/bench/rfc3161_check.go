package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// The OIDs of the standard check (RFC 3161, RFC 5652, RFC 2634, RFC 5816).
var (
	oidTSTInfo              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidSigningCertificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSHA256               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// errTokenCheck marks a token that the standard check refused.
var errTokenCheck = errors.New("rfc3161 token refused")

// maxChainSize bounds a certificate chain fetched from a TSA.
const maxChainSize = 1 << 20

// chainCheck is the standard check of the tokens of an RFC 3161 server
// that need not be tsnode, against a chain given by the operator: one
// DER TimeStampResp, granted, with one TimeStampToken of one signer;
// the signing certificate (from the token or the chain) chains, at
// genTime and for id-kp-timeStamping, to the chain's root (its last
// certificate, self-signed); the CMS signature verifies over signed
// attributes whose content type is id-ct-TSTInfo and whose
// signing-certificate (v2 or v1) names the signing certificate; the
// imprint is SHA-256 of the document asked for and the nonce the one
// sent. It is not tsnode's trust rule (PROTOCOL.md §14.5).
type chainCheck struct {
	certs                []*x509.Certificate // the given chain, root last
	roots, intermediates *x509.CertPool
	// verified holds, per signing certificate (its DER), the window of
	// genTimes in which its chain verified: x509 path building is done
	// once per certificate, not per token.
	verified sync.Map // string -> validity
}

type validity struct{ from, until time.Time }

func newChainCheck(chain []*x509.Certificate) (*chainCheck, error) {
	if len(chain) == 0 {
		return nil, errors.New("TSA chain: no certificates")
	}
	root := chain[len(chain)-1]
	if !bytes.Equal(root.RawSubject, root.RawIssuer) || root.CheckSignatureFrom(root) != nil {
		return nil, fmt.Errorf("TSA chain: its last certificate (%q) is not a self-signed root", root.Subject.String())
	}
	c := &chainCheck{certs: chain, roots: x509.NewCertPool(), intermediates: x509.NewCertPool()}
	c.roots.AddCert(root)
	for _, cert := range chain[:len(chain)-1] {
		c.intermediates.AddCert(cert)
	}
	return c, nil
}

// tstInfo is RFC 3161 §2.4.2's TSTInfo.
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	SerialNumber *big.Int
	GenTime      time.Time `asn1:"generalized"`
	Accuracy     struct {
		Seconds int `asn1:"optional"`
		Millis  int `asn1:"tag:0,optional"`
		Micros  int `asn1:"tag:1,optional"`
	} `asn1:"optional"`
	Ordering   bool             `asn1:"optional,default:false"`
	Nonce      *big.Int         `asn1:"optional"`
	TSA        asn1.RawValue    `asn1:"tag:0,optional"`
	Extensions []pkix.Extension `asn1:"tag:1,optional"`
}

// essCertID is ESSCertIDv2 (RFC 5816) or, with hash SHA-1 and no
// algorithm, ESSCertID (RFC 2634); the issuer and serial are optional.
type essCertID struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  asn1.RawValue `asn1:"optional"`
}

type signingCertificate struct {
	Certs    []essCertID
	Policies asn1.RawValue `asn1:"optional"`
}

// check checks resp, the answer to a request for the SHA-256 hash with
// nonce.
func (c *chainCheck) check(resp, hash []byte, nonce *big.Int) error {
	token, err := protocol.ParseTSAResponse(resp)
	if err != nil {
		return err
	}
	t, info, err := parseStandardToken(token)
	if err != nil {
		return err
	}
	return c.checkToken(t, info, hash, nonce)
}

// checkToken is check of a parsed token.
func (c *chainCheck) checkToken(t *signedToken, info *tstInfo, hash []byte, nonce *big.Int) error {
	signer := t.signerOf(c.certs)
	if signer == nil {
		return fmt.Errorf("%w: the signing certificate is neither in the token nor in the given chain", errTokenCheck)
	}
	if err := c.checkChain(signer, info.GenTime); err != nil {
		return err
	}
	if err := t.verify(signer); err != nil {
		return err
	}
	if !t.contentType.Equal(oidTSTInfo) {
		return fmt.Errorf("%w: the signed content type is %s, not id-ct-TSTInfo", errTokenCheck, t.contentType)
	}
	if err := checkESSCertID(t, signer); err != nil {
		return err
	}
	if alg := info.MessageImprint.HashAlgorithm.Algorithm; !alg.Equal(oidSHA256) {
		return fmt.Errorf("%w: the token's imprint is hashed with %s, the request's with SHA-256", protocol.ErrReplyMismatch, alg)
	}
	if !bytes.Equal(info.MessageImprint.HashedMessage, hash) {
		return fmt.Errorf("%w: the token's imprint %x is not the request's %x", protocol.ErrReplyMismatch, info.MessageImprint.HashedMessage, hash)
	}
	if info.Nonce == nil || info.Nonce.Cmp(nonce) != 0 {
		return fmt.Errorf("%w: the token's nonce is not the request's", protocol.ErrReplyMismatch)
	}
	return nil
}

// parseStandardToken parses a DER TimeStampToken of one signer and its
// TSTInfo (version 1, nothing after it).
func parseStandardToken(der []byte) (*signedToken, *tstInfo, error) {
	t, err := parseSignedToken(der)
	if err != nil {
		return nil, nil, err
	}
	info := &tstInfo{}
	if rest, err := asn1.Unmarshal(t.content, info); err != nil || len(rest) > 0 {
		return nil, nil, fmt.Errorf("%w: TSTInfo does not parse (%v, %d bytes after it)", errTokenCheck, err, len(rest))
	}
	if info.Version != 1 {
		return nil, nil, fmt.Errorf("%w: TSTInfo version %d, want 1", errTokenCheck, info.Version)
	}
	return t, info, nil
}

// checkChain verifies, once per signing certificate, that signer chains
// to the root for time-stamping at genTime; a later genTime outside the
// validity of that chain is verified again.
func (c *chainCheck) checkChain(signer *x509.Certificate, genTime time.Time) error {
	if v, ok := c.verified.Load(string(signer.Raw)); ok {
		w := v.(validity)
		if !genTime.Before(w.from) && !genTime.After(w.until) {
			return nil
		}
	}
	chains, err := signer.Verify(x509.VerifyOptions{
		Roots: c.roots, Intermediates: c.intermediates, CurrentTime: genTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return fmt.Errorf("%w: the signing certificate %q does not chain to the given root at genTime %s: %v",
			errTokenCheck, signer.Subject.String(), genTime.UTC().Format(time.RFC3339Nano), err)
	}
	w := validity{from: signer.NotBefore, until: signer.NotAfter}
	for _, cert := range chains[0] {
		if cert.NotBefore.After(w.from) {
			w.from = cert.NotBefore
		}
		if cert.NotAfter.Before(w.until) {
			w.until = cert.NotAfter
		}
	}
	c.verified.Store(string(signer.Raw), w)
	return nil
}

// checkESSCertID checks that the signing-certificate-v2 attribute (or,
// without it, signing-certificate) names signer by its hash.
func checkESSCertID(t *signedToken, signer *x509.Certificate) error {
	var sc signingCertificate
	v1 := false
	raw, ok := t.attrs[oidSigningCertificateV2.String()]
	if !ok {
		raw, v1 = t.attrs[oidSigningCertificate.String()], true
	}
	if rest, err := asn1.Unmarshal(raw, &sc); err != nil || len(rest) > 0 {
		return fmt.Errorf("%w: no signing-certificate attribute, v2 (RFC 5816) or v1 (RFC 2634), that parses", errTokenCheck)
	}
	if len(sc.Certs) == 0 {
		return fmt.Errorf("%w: the signing-certificate attribute names no certificate", errTokenCheck)
	}
	id := sc.Certs[0]
	var sum []byte
	switch alg := id.HashAlgorithm.Algorithm; {
	case v1:
		s := sha1.Sum(signer.Raw) // ESSCertID (RFC 2634) names the certificate by its SHA-1
		sum = s[:]
	case len(alg) == 0 || alg.Equal(oidSHA256):
		s := sha256.Sum256(signer.Raw)
		sum = s[:]
	case alg.Equal(oidSHA384):
		s := sha512.Sum384(signer.Raw)
		sum = s[:]
	case alg.Equal(oidSHA512):
		s := sha512.Sum512(signer.Raw)
		sum = s[:]
	default:
		return fmt.Errorf("%w: signing-certificate-v2 hashes with %s", errTokenCheck, alg)
	}
	if !bytes.Equal(id.CertHash, sum) {
		return fmt.Errorf("%w: the signing-certificate attribute does not name the signing certificate", errTokenCheck)
	}
	return nil
}

// tsnodeCheck checks the tokens of the tsnode server the bench loads.
// The full check is tsnode's trust rule, as `tsnode stamp --rfc3161`
// applies it (PROTOCOL.md §14.5, Trust.CheckTSAToken: the chain's root is
// the server's identity key), and that the token is the server's. It
// costs three RSA-4096 verifications (about 1.5 ms of a core here): the
// load generator, on the server's cores, would measure itself. So the
// full check runs on the first token of each signing certificate, which
// establishes that certificate and its root, and on every every-th
// token; the others get chainCheck against that established chain (the
// same signature, chain, signing-certificate, imprint and nonce checks,
// the chain verified once).
type tsnodeCheck struct {
	trust  *protocol.Trust
	server identity.ID
	every  int // -1: only to establish a chain
	n      atomic.Uint64
	chains sync.Map // signing certificate DER -> *chainCheck
}

// check checks resp, the answer to a request for the SHA-256 hash with
// nonce; full says whether it got the full check.
func (c *tsnodeCheck) check(resp, hash []byte, nonce *big.Int) (full bool, err error) {
	token, err := protocol.ParseTSAResponse(resp)
	if err != nil {
		return false, err
	}
	t, info, err := parseStandardToken(token)
	if err != nil {
		return false, err
	}
	n := c.n.Add(1)
	if signer := t.signerOf(nil); signer != nil && (c.every <= 0 || n%uint64(c.every) != 0) {
		if cc, ok := c.chains.Load(string(signer.Raw)); ok {
			return false, cc.(*chainCheck).checkToken(t, info, hash, nonce)
		}
	}
	tok, err := c.trust.CheckTSAToken(token, nil, func(h crypto.Hash) ([]byte, error) {
		if h != crypto.SHA256 {
			return nil, fmt.Errorf("%w: the token's imprint is %s, the request's SHA-256", protocol.ErrReplyMismatch, protocol.TSAHashName(h))
		}
		return hash, nil
	})
	if err != nil {
		return true, err
	}
	if !bytes.Equal(tok.Nonce, nonceContent(nonce)) {
		return true, fmt.Errorf("%w: the token's nonce is not the request's", protocol.ErrReplyMismatch)
	}
	if tok.ServerID != c.server {
		return true, fmt.Errorf("%w: the token is signed by %s, not by the server loaded (%s)", protocol.ErrReplyMismatch, tok.ServerID, c.server)
	}
	if _, ok := c.chains.Load(string(tok.Signer.Raw)); !ok {
		cc, err := newChainCheck([]*x509.Certificate{tok.Signer, tok.Root})
		if err != nil {
			return true, err
		}
		c.chains.Store(string(tok.Signer.Raw), cc)
	}
	return true, nil
}

// nonceContent is the content octets of the DER INTEGER n (n ≥ 0), as
// a tsnode token holds the nonce.
func nonceContent(n *big.Int) []byte {
	b := n.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// prepareTSA loads the chain that cfg.TSAURL's tokens are checked
// against: the --tsa-chain file, else the chain the server serves at
// /api/v1/timestamp/certchain (then the bench trusts what it is told on
// first use: this measures, it does not audit).
func (r *runner) prepareTSA(ctx context.Context) error {
	cfg := r.cfg
	var pemChain []byte
	source := cfg.TSAChain
	if source != "" {
		b, err := os.ReadFile(source)
		if err != nil {
			return fmt.Errorf("TSA chain: %w", err)
		}
		pemChain = b
	} else {
		u, _ := url.Parse(cfg.TSAURL) // checked by Check
		u.Path, u.RawQuery, u.Fragment = tsa.PathCertChain, "", ""
		source = u.String()
		b, err := fetchChain(ctx, source)
		if err != nil {
			return err
		}
		pemChain = b
	}
	chain, err := protocol.ParseCertsPEM(pemChain)
	if err != nil {
		return fmt.Errorf("TSA chain %s: %w", source, err)
	}
	if r.tsaChain, err = newChainCheck(chain); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return nil
}

// fetchChain GETs the PEM chain at u.
func fetchChain(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch the TSA's chain (give it with a chain file instead): %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxChainSize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the TSA's chain from %s: %w", u, err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 200)]))
	case len(b) > maxChainSize:
		return nil, fmt.Errorf("GET %s: a chain larger than %d bytes", u, maxChainSize)
	}
	return b, nil
}
