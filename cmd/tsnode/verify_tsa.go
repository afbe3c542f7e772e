package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/protocol"
)

// tsaLogFlags are verify --rfc3161's proof that the token is logged:
// asked of --server (as --id), written to --out, or read from --inclusion.
type tsaLogFlags struct {
	server, id, passFile, out, inclusion string
	mode                                 *keyMode
}

// verifyRFC3161 checks the RFC 3161 token (or TimeStampResp) in path
// for the document doc offline (PROTOCOL.md §14.5), and that it is in the
// log when lf asks (§14.6): exit 0 when valid.
func verifyRFC3161(path, doc, keys string, trust *trustFlag, lf *tsaLogFlags, asJSON bool, stdout io.Writer) error {
	policy, err := loadTrust(keys, trust)
	if err != nil {
		return err
	}
	out := verifyJSON{File: doc, Token: path, Inclusion: lf.inclusion}
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
	var logged *tokenInLog
	switch {
	case lf.server != "":
		logged, err = fetchTokenLeaf(keys, trust, lf, tok)
	case lf.inclusion != "":
		logged, err = readTokenLeaf(lf.inclusion)
	}
	if err != nil {
		return err
	}
	if logged != nil {
		if _, err := policy.CheckTSAInclusion(tok, logged.head, logged.leaf, logged.proof); err != nil {
			return invalid(stdout, asJSON, out, fmt.Sprintf("INVALID: %s: %v", path, err), err)
		}
		if lf.out != "" {
			f := protocol.NewTSAInclusion(logged.head, tok.Serial, logged.leaf, logged.proof)
			if err := os.WriteFile(lf.out, f.Marshal(), 0o644); err != nil {
				return fmt.Errorf("cannot write the inclusion proof: %w", err)
			}
			out.Inclusion = lf.out
		}
		size := logged.head.Head.Size
		out.TreeSize = &size
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
	if logged != nil {
		h := logged.head.Head
		fmt.Fprintf(stdout, "  in the log: leaf %d under the tree head of size %d, root %x, %s (inclusion proof of %d hashes)\n",
			tok.Serial, h.Size, h.Root[:], protocol.FormatTime(h.Time), len(logged.proof))
		if lf.out != "" {
			fmt.Fprintf(stdout, "  wrote %s (check it later with tsnode verify --rfc3161 %s --inclusion %s %s)\n", lf.out, path, lf.out, doc)
		}
	}
	return nil
}

// tokenInLog is a head, the leaf at a token's serial and its proof.
type tokenInLog struct {
	head  *protocol.SignedTreeHead
	leaf  []byte
	proof tlog.RecordProof
}

// fetchTokenLeaf asks the token's authority at lf.server for the leaf at
// its serial and its inclusion proof in the latest head (§8.5).
func fetchTokenLeaf(keys string, trust *trustFlag, lf *tsaLogFlags, tok *protocol.TSAToken) (*tokenInLog, error) {
	id, ephemeral, err := auditorIdentity(keys, lf.id, lf.passFile, lf.mode)
	if err != nil {
		return nil, err
	}
	policy, err := trust.policy(id.Dir, id.Retired)
	if err != nil {
		return nil, err
	}
	entry, info, err := node.ResolvePeer(id.Dir, tok.ServerID, lf.server, id.Retired...)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	h, err := node.NewHost(id, nil)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), node.DefaultConnectTimeout)
	defer cancel()
	if err := h.Connect(ctx, info); err != nil {
		err = fmt.Errorf("cannot reach server %s at %v: %w", entry.ID, info.Addrs, node.ExplainDialError(err, entry.ID))
		if ephemeral {
			err = fmt.Errorf("%w (connecting with an ephemeral identity: the server must run with --public-log, or give --id)", err)
		}
		return nil, err
	}
	head, leaf, proof, err := logsync.NewClient(h, entry, policy).FetchLeaf(ctx, tok.Serial)
	if err != nil {
		return nil, err
	}
	return &tokenInLog{head: head, leaf: leaf, proof: proof}, nil
}

// readTokenLeaf reads an inclusion file written by --out.
func readTokenLeaf(path string) (*tokenInLog, error) {
	f, err := protocol.ReadTSAInclusionFile(path)
	if err != nil {
		return nil, err
	}
	head, leaf, proof, err := f.Decode()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &tokenInLog{head: head, leaf: leaf, proof: proof}, nil
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
// the trusted authorities, for tokens that carry none: the current chain
// and root, and the past ones (signing certificates renewed, roots of
// rotated keys), for tokens signed before.
func publishedChains(keys string, policy *protocol.Trust) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, id := range policy.Authorities() {
		for _, p := range []string{tsa.ChainPath(keys, id), tsa.RootPath(keys, id), tsa.PastPath(keys, id)} {
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
