package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode verify", stderr)
	receiptPath := fs.String("receipt", "", "receipt `file` to check (required)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR` holding the server's public key")
	consistency := fs.String("consistency", "", "instead, check a consistency proof `file` written by tsnode log --out")
	trust := addTrustFlag(fs, "accept only signatures of this authority `ID` (repeatable; default server)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object (fields in README)")
	evidence := fs.String("evidence", "", "instead, check an evidence `file` of equivocation (exit 0 when it proves one)")
	rfc3161 := fs.String("rfc3161", "", "instead, check an RFC 3161 token `file` (.tsr: a TimeStampResp or a bare token) for the document FILE")
	lf := &tsaLogFlags{}
	fs.StringVar(&lf.server, "server", "", "with --rfc3161, also prove that the token's serial is in the log of its authority's server at this `multiaddr` (/tsnode/log/1.1.0)")
	fs.StringVar(&lf.out, "out", "", "with --rfc3161 --server, write the tree head, the leaf and its inclusion proof to this `file`")
	fs.StringVar(&lf.inclusion, "inclusion", "", "with --rfc3161, check the token's inclusion offline against this `file` written by --out")
	fs.StringVar(&lf.id, "id", "", "with --server, connect as this enrolled `ID` (as tsnode log --id; default "+string(identity.RequesterID)+" if its private key is in --keys, else an ephemeral identity)")
	fs.StringVar(&lf.passFile, "passphrase-file", "", "with --server, read the private key's passphrase from this `file`")
	lf.mode = addKeyModeFlag(fs, stderr)
	var wit witnessFlags
	addRequireFlags(fs, &wit)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *evidence != "" {
		if *receiptPath != "" || *consistency != "" || len(pos) != 0 {
			return usageErr("--evidence takes no receipt, consistency file or document")
		}
		return verifyEvidence(*evidence, *keys, trust, *asJSON, stdout)
	}
	if *rfc3161 != "" {
		if *receiptPath != "" || *consistency != "" || len(pos) != 1 {
			return usageErr("--rfc3161 T.tsr takes exactly one document FILE and no receipt or consistency file")
		}
		if lf.out != "" && lf.server == "" || lf.server != "" && lf.inclusion != "" {
			return usageErr("--out needs --server; --server and --inclusion do not go together")
		}
		return verifyRFC3161(*rfc3161, pos[0], *keys, trust, lf, *asJSON, stdout)
	}
	if lf.server != "" || lf.out != "" || lf.inclusion != "" {
		return usageErr("--server, --out and --inclusion go with --rfc3161")
	}
	if *consistency != "" {
		if *receiptPath != "" || len(pos) != 0 {
			return usageErr("--consistency takes no receipt or document")
		}
		return verifyConsistency(*consistency, *keys, trust, *asJSON, stdout)
	}
	if *receiptPath == "" || len(pos) != 1 {
		return usageErr("verify needs --receipt R and exactly one document FILE")
	}
	doc := pos[0]
	policy, err := loadTrust(*keys, trust)
	if err != nil {
		return err
	}
	dir, err := identity.LoadDirectory(*keys)
	if err != nil {
		return err
	}
	witnesses, err := wit.policy(dir)
	if err != nil {
		return err
	}
	out := verifyJSON{File: doc, Receipt: *receiptPath}
	rc, err := protocol.ReadReceiptFile(*receiptPath)
	if err != nil {
		return invalid(stdout, *asJSON, out, fmt.Sprintf("INVALID: %v", err), err)
	}
	hash, err := protocol.HashFile(doc)
	if err != nil {
		return err
	}
	out.SHA256 = fmt.Sprintf("%x", hash)
	st, cosigs, err := rc.VerifyWitnessed(policy, witnesses, hash, nil)
	if err != nil {
		return invalid(stdout, *asJSON, out, fmt.Sprintf("INVALID: %s: %v", *receiptPath, err), err)
	}
	for _, c := range cosigs {
		out.Witnesses = append(out.Witnesses, string(c.Cosig.WitnessID))
	}
	if *asJSON {
		serial := st.Serial
		out.Time, out.Serial, out.ServerID, out.ServerPeer, out.RequesterID, out.OK = protocol.FormatTime(st.Time), &serial, string(st.ServerID), st.ServerPeer.String(), string(st.RequesterID), true
		writeJSONLine(stdout, out)
		return nil
	}
	fmt.Fprintf(stdout, "VALID: %s (sha-256 %x) existed at %s\n  serial %d, signed by %s (%s), requested by %s\n",
		doc, st.DocumentHash, protocol.FormatTime(st.Time), st.Serial, st.ServerID, st.ServerPeer, st.RequesterID)
	if len(cosigs) > 0 {
		fmt.Fprintf(stdout, "  witnessed by %s (%d of %d required)\n", strings.Join(out.Witnesses, ", "), len(cosigs), witnesses.K())
	}
	return nil
}

// verifyEvidence checks an evidence file offline: exit 0 when it proves
// that a trusted authority signed two heads that cannot both be true.
func verifyEvidence(path, keys string, trust *trustFlag, asJSON bool, stdout io.Writer) error {
	policy, err := loadTrust(keys, trust)
	if err != nil {
		return err
	}
	out := verifyJSON{Evidence: path}
	f, err := protocol.ReadEvidenceFile(path)
	if errors.Is(err, protocol.ErrMalformedEvidence) {
		return invalid(stdout, asJSON, out, fmt.Sprintf("INVALID: %v", err), err)
	}
	if err != nil {
		return err
	}
	kind, err := f.Verify(policy)
	if err != nil {
		return invalid(stdout, asJSON, out, fmt.Sprintf("INVALID: %s: %v", path, err), err)
	}
	out.Kind, out.ServerID, out.OK = kind, f.First.ServerIDOf(), true
	if asJSON {
		writeJSONLine(stdout, out)
		return nil
	}
	fmt.Fprintf(stdout, "VALID: %s proves that %s equivocated (%s): it signed a head of size %d (root %s) and one of size %d (root %s) that cannot both be true\n",
		path, out.ServerID, kind, f.First.Size, f.First.RootHash, f.Second.Size, f.Second.RootHash)
	return nil
}

// verifyJSON is verify's --json object (README, "JSON output").
type verifyJSON struct {
	File        string   `json:"file,omitempty"`
	Receipt     string   `json:"receipt,omitempty"`
	Token       string   `json:"token,omitempty"`
	HashAlg     string   `json:"hash_algorithm,omitempty"`
	Imprint     string   `json:"imprint,omitempty"`
	Inclusion   string   `json:"inclusion,omitempty"`
	TreeSize    *uint64  `json:"tree_size,omitempty"`
	Consistency string   `json:"consistency,omitempty"`
	SHA256      string   `json:"sha256,omitempty"`
	Time        string   `json:"time,omitempty"`
	Serial      *uint64  `json:"serial,omitempty"`
	ServerID    string   `json:"server_id,omitempty"`
	ServerPeer  string   `json:"server_peer_id,omitempty"`
	RequesterID string   `json:"requester_id,omitempty"`
	OldSize     *uint64  `json:"old_size,omitempty"`
	NewSize     *uint64  `json:"new_size,omitempty"`
	Witnesses   []string `json:"witnesses,omitempty"`
	Evidence    string   `json:"evidence,omitempty"`
	Kind        string   `json:"kind,omitempty"`
	OK          bool     `json:"ok"`
	Error       string   `json:"error,omitempty"`
}

// invalid reports a failed check, as text or as JSON.
func invalid(stdout io.Writer, asJSON bool, out verifyJSON, text string, err error) error {
	if asJSON {
		out.Error = err.Error()
		writeJSONLine(stdout, out)
	} else {
		fmt.Fprintln(stdout, text)
	}
	return errReported
}

func verifyConsistency(path, keys string, trust *trustFlag, asJSON bool, stdout io.Writer) error {
	policy, err := loadTrust(keys, trust)
	if err != nil {
		return err
	}
	out := verifyJSON{Consistency: path}
	c, err := protocol.ReadConsistencyFile(path)
	if errors.Is(err, protocol.ErrMalformedReceipt) {
		return invalid(stdout, asJSON, out, fmt.Sprintf("INVALID: %v", err), err)
	}
	if err != nil {
		return err
	}
	if err := c.Verify(policy); err != nil {
		return invalid(stdout, asJSON, out, fmt.Sprintf("INVALID: %s: %v", path, err), err)
	}
	if asJSON {
		oldSize, newSize := c.Old.Size, c.New.Size
		out.OldSize, out.NewSize, out.OK = &oldSize, &newSize, true
		writeJSONLine(stdout, out)
		return nil
	}
	fmt.Fprintf(stdout, "VALID: the log of size %d extends the log of size %d\n", c.New.Size, c.Old.Size)
	return nil
}

// loadTrust loads the identity directory of keys and the trust policy of
// the --trust flag.
func loadTrust(keys string, trust *trustFlag) (*protocol.Trust, error) {
	dir, err := identity.LoadDirectory(keys)
	if err != nil {
		return nil, err
	}
	retired, err := protocol.LoadRetiredKeys(keys, dir)
	if err != nil {
		return nil, err
	}
	return trust.policy(dir, retired)
}
