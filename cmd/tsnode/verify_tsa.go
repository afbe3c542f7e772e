package main

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// verifyRFC3161 checks the RFC 3161 token (or TimeStampResp) in path
// for the document doc offline (PROTOCOL.md §14.5): exit 0 when valid.
func verifyRFC3161(path, doc, keys string, trust *trustFlag, asJSON bool, stdout io.Writer) error {
	policy, err := loadTrust(keys, trust)
	if err != nil {
		return err
	}
	out := verifyJSON{File: doc, Token: path}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := os.Stat(doc); err != nil {
		return fmt.Errorf("document: %w", err)
	}
	extra, err := publishedChains(keys, policy)
	if err != nil {
		return err
	}
	tok, err := checkTokenFile(policy, b, extra, protocol.TSADigest(doc))
	if err != nil {
		return invalid(stdout, asJSON, out, fmt.Sprintf("INVALID: %s: %v", path, err), err)
	}
	serial := tok.Serial
	out.Time, out.Serial, out.ServerID, out.ServerPeer = protocol.FormatTime(tok.Time), &serial, string(tok.ServerID), tok.ServerPeer.String()
	out.HashAlg, out.Imprint, out.OK = protocol.TSAHashName(tok.Hash), fmt.Sprintf("%x", tok.Imprint), true
	if asJSON {
		writeJSONLine(stdout, out)
		return nil
	}
	fmt.Fprintf(stdout, "VALID: %s (%s %x) existed at %s\n  RFC 3161 token serial %d, policy %s, signed by %s (%s) with %q\n",
		doc, out.HashAlg, tok.Imprint, out.Time, tok.Serial, tok.Policy, tok.ServerID, tok.ServerPeer, tok.Signer.Subject.CommonName)
	return nil
}

// checkTokenFile checks b, a DER TimeStampResp (openssl ts -reply) or a
// bare TimeStampToken (-token_out).
func checkTokenFile(policy *protocol.Trust, b []byte, extra []*x509.Certificate, digest func(h crypto.Hash) ([]byte, error)) (*protocol.TSAToken, error) {
	der, err := protocol.ParseTSAResponse(b)
	if errors.Is(err, protocol.ErrMalformed) {
		der, err = b, nil // not a response: perhaps a token
	}
	if err != nil {
		return nil, err
	}
	return policy.CheckTSAToken(der, extra, digest)
}

// publishedChains are the certificates published in keys/public/tsa for
// the trusted authorities, for tokens that carry none.
func publishedChains(keys string, policy *protocol.Trust) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, id := range policy.Authorities() {
		for _, p := range []string{tsa.ChainPath(keys, id), tsa.RootPath(keys, id)} {
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			c, err := protocol.ParseCertsPEM(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", p, err)
			}
			certs = append(certs, c...)
		}
	}
	return certs, nil
}
