package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/protocol"
)

// requestFlags are the requester's flags beyond roleFlags: --json, and
// relay's --receipt.
type requestFlags struct {
	json    bool
	receipt string
	rfc3161 bool   // stamp --rfc3161 (stamp_tsa.go)
	tsaURL  string // stamp --tsa-url
}

// apply takes the positional arguments: the documents of stamp and relay
// (none for --role).
func (r *requestFlags) apply(sub string, f *roleFlags, pos []string) error {
	switch sub {
	case "":
		if len(pos) > 0 {
			return usageErr("unexpected arguments %q (documents go with --file)", pos)
		}
		return nil
	case "stamp":
		r.rfc3161 = r.rfc3161 || r.tsaURL != ""
		if r.rfc3161 && (f.oneShot || f.witnessFlags().k > 0 || len(f.witnessFlags().required) > 0) {
			return usageErr("--rfc3161 takes no --oneshot, --witness or --witnesses")
		}
		if len(pos) == 0 || f.server == "" && r.tsaURL == "" {
			return usageErr("stamp needs --server (or --rfc3161 --tsa-url URL) and at least one document FILE")
		}
	case "relay":
		if r.receipt == "" || len(pos) != 1 || f.verifier == "" {
			return usageErr("relay needs --verifier, --receipt R and exactly one document FILE")
		}
		f.relayOnly = true
	}
	f.files = append(f.files, pos...)
	return nil
}

func runRequester(ctx context.Context, id *node.Identity, f roleFlags, req *requestFlags, stdout, stderr io.Writer) error {
	if f.timeout < 0 {
		return usageErr("--timeout %v: want 0 (scaled to the document) or more", f.timeout)
	}
	var receipt *protocol.Receipt
	if f.relayOnly {
		var err error
		if receipt, err = protocol.ReadReceiptFile(req.receipt); err != nil {
			return fmt.Errorf("--receipt: %w", err)
		}
	}
	// Create --out before anything is stamped: a receipt that cannot be
	// written wastes the server's signature and serial.
	if f.out != "" {
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	trust, err := f.trust.policy(id.Dir, id.Retired)
	if err != nil {
		return err
	}
	witnesses, err := f.witnessFlags().policy(id.Dir)
	if err != nil {
		return err
	}
	prog := newProgress(stderr)
	defer prog.Close()
	stdout = prog.Writer(stdout)
	r, err := node.NewRequester(id, node.RequesterConfig{
		Trust:    trust,
		ServerID: identity.ID(f.serverID), ServerAddr: f.server,
		VerifierID: identity.ID(f.verifierID), VerifierAddr: f.verifier,
		OutDir: f.out, Listen: f.listen, OneShot: f.oneShot, Parallel: f.parallel,
		Progress:  prog.Start,
		Witnesses: witnesses, Peers: f.witnessFlags().peers,
	})
	if err != nil {
		return err
	}
	defer r.Close()
	// The first connection waits for a peer that is restarting, but not
	// for the whole of a large document's timeout.
	connectCtx, cancel := node.WithTimeout(ctx, min(node.DefaultConnectTimeout, f.timeout))
	if f.timeout == 0 {
		connectCtx, cancel = node.WithTimeout(ctx, node.DefaultConnectTimeout)
	}
	err = r.Connect(connectCtx)
	cancel()
	if err != nil {
		return err
	}
	failed := 0
	report := func(res *node.Result) {
		if req.json {
			writeJSONLine(stdout, resultJSON(res))
		} else {
			printResult(stdout, res)
		}
		if !res.OK() {
			failed++
		}
	}
	what := "stamped and verified"
	switch {
	case f.relayOnly:
		what = "relayed and verified"
		d := f.timeout
		if d == 0 {
			d = node.DocumentTimeout(fileSize(f.files[0]))
		}
		rctx, cancel := node.WithTimeout(ctx, d)
		report(r.Relay(rctx, f.files[0], receipt, req.receipt))
		cancel()
	default:
		if f.verifier == "" {
			what = "stamped"
		}
		timeout := f.timeout
		if timeout == 0 {
			timeout = node.ScaledTimeout
		}
		r.ProcessAll(ctx, f.files, timeout, report)
	}
	summary := stdout
	if req.json {
		summary = stderr // stdout holds only JSON objects
	}
	fmt.Fprintf(summary, "%d of %d documents %s\n", len(f.files)-failed, len(f.files), what)
	if failed > 0 {
		return errReported
	}
	return nil
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

func printResult(w io.Writer, res *node.Result) {
	fmt.Fprintf(w, "%s\n", res.Path)
	if res.Hash != nil {
		fmt.Fprintf(w, "  sha-256    %x\n", res.Hash)
	}
	if rc := res.Receipt; rc != nil {
		fmt.Fprintf(w, "  stamped    %s  serial %d  by %s\n", rc.Time, rc.Serial, rc.ServerID)
		if res.StampTries > 0 {
			fmt.Fprintf(w, "  signature  verified with %s's public key (%s)\n", rc.ServerID, rc.ServerPeer)
		}
		if ids := cosigners(rc); len(ids) > 0 {
			fmt.Fprintf(w, "  witnessed  head of size %d cosigned by %s\n", rc.CosignedHead.Size, strings.Join(ids, ", "))
		}
	}
	if res.ReceiptPath != "" {
		fmt.Fprintf(w, "  receipt    %s\n", res.ReceiptPath)
	}
	if v := res.Verdict; v != nil {
		fmt.Fprintf(w, "  verifier   %s says %s\n", v.Verifier, v)
	}
	if res.StampTries > 1 || res.RelayTries > 1 {
		fmt.Fprintf(w, "  tries      stamp %d, relay %d\n", res.StampTries, res.RelayTries)
	}
	if res.Warning != "" {
		fmt.Fprintf(w, "  WARNING    %s\n", res.Warning)
	}
	if res.Err != nil {
		fmt.Fprintf(w, "  FAILED     %v\n", res.Err)
	} else {
		fmt.Fprintf(w, "  OK\n")
	}
}

// documentJSON is the --json line of one document (README, "JSON
// output"): field names are stable; empty ones are left out, but for ok.
type documentJSON struct {
	File          string   `json:"file"`
	SHA256        string   `json:"sha256,omitempty"`
	Receipt       string   `json:"receipt,omitempty"`
	ServerID      string   `json:"server_id,omitempty"`
	Serial        *uint64  `json:"serial,omitempty"`
	Time          string   `json:"time,omitempty"`
	Witnesses     []string `json:"witnesses,omitempty"`
	Verifier      string   `json:"verifier,omitempty"`
	Verdict       string   `json:"verdict,omitempty"`
	VerdictDetail string   `json:"verdict_detail,omitempty"`
	StampTries    int      `json:"stamp_tries,omitempty"`
	RelayTries    int      `json:"relay_tries,omitempty"`
	Warning       string   `json:"warning,omitempty"`
	OK            bool     `json:"ok"`
	Error         string   `json:"error,omitempty"`
}

func resultJSON(res *node.Result) documentJSON {
	out := documentJSON{File: res.Path, SHA256: hex.EncodeToString(res.Hash), Receipt: res.ReceiptPath,
		StampTries: res.StampTries, RelayTries: res.RelayTries, Warning: res.Warning, OK: res.OK()}
	if rc := res.Receipt; rc != nil {
		serial := rc.Serial
		out.ServerID, out.Serial, out.Time = rc.ServerID, &serial, rc.Time
		out.Witnesses = cosigners(rc)
	}
	if v := res.Verdict; v != nil {
		out.Verifier, out.Verdict, out.VerdictDetail = string(v.Verifier), string(v.Code), v.Message
	}
	if res.Err != nil {
		out.Error = res.Err.Error()
	}
	return out
}

// writeJSONLine writes v as one line: a whole object or nothing.
func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return // only our own plain structs: cannot fail
	}
	_, _ = w.Write(append(b, '\n'))
}

// cosigners are the witnesses whose cosignatures a (v3) receipt carries.
func cosigners(rc *protocol.Receipt) []string {
	var ids []string
	for _, c := range rc.Cosignatures {
		ids = append(ids, c.WitnessID)
	}
	return ids
}
