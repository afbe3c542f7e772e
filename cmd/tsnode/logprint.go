package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// logResult is tsnode log --json's object. The names are stable: add,
// never rename.
type logResult struct {
	ServerID   string `json:"server_id"`
	ServerPeer string `json:"server_peer"`
	Size       uint64 `json:"size"`
	Root       string `json:"root"` // hex; "" for an empty log
	Time       string `json:"time"` // RFC 3339 UTC; "" for an empty log
	// Empty: the server says its log is empty; no signed head backs it.
	Empty bool `json:"empty"`
	// With --from: the receipt's head, and whether the log extends it.
	FromSize    *uint64 `json:"from_size,omitempty"`
	FromRoot    string  `json:"from_root,omitempty"`
	Consistent  *bool   `json:"consistent,omitempty"`
	ProofHashes *int    `json:"proof_hashes,omitempty"`
	ProofFile   string  `json:"proof_file,omitempty"`
	// With --serial: the leaf and whether its inclusion proof holds.
	Serial   *uint64 `json:"serial,omitempty"`
	LeafKind string  `json:"leaf_kind,omitempty"` // stamp or rfc3161
	LeafTime string  `json:"leaf_time,omitempty"`
	LeafHash string  `json:"leaf_hash,omitempty"` // hex: document hash or message imprint
	Included *bool   `json:"included,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// logPrinter prints tsnode log's results as text or as JSON.
type logPrinter struct {
	w      io.Writer
	json   bool
	server identity.Entry
}

func (p logPrinter) print(r logResult, text func()) {
	if !p.json {
		text()
		return
	}
	b, _ := json.Marshal(r) // plain fields: cannot fail
	fmt.Fprintf(p.w, "%s\n", b)
}

func (p logPrinter) result(sth *protocol.SignedTreeHead) logResult {
	r := logResult{ServerID: string(p.server.ID), ServerPeer: p.server.PeerID.String()}
	if sth == nil {
		r.Empty = true
		return r
	}
	h := sth.Head
	r.Size, r.Root, r.Time = h.Size, hex.EncodeToString(h.Root[:]), protocol.FormatTime(h.Time)
	return r
}

func (p logPrinter) empty() {
	p.print(p.result(nil), func() {
		fmt.Fprintf(p.w, "latest tree head: none, the log is empty\n  server  %s (%s)\n  size    0\n", p.server.ID, p.server.PeerID)
	})
}

func (p logPrinter) head(label string, sth *protocol.SignedTreeHead) {
	p.print(p.result(sth), func() { printHead(p.w, label, sth) })
}

func (p logPrinter) withFrom(r logResult, old *protocol.SignedTreeHead, ok bool) logResult {
	size := old.Head.Size
	r.FromSize, r.FromRoot, r.Consistent = &size, hex.EncodeToString(old.Head.Root[:]), &ok
	return r
}

func (p logPrinter) consistent(old, nw *protocol.SignedTreeHead, proofHashes int, out string) {
	r := p.withFrom(p.result(nw), old, true)
	r.ProofHashes, r.ProofFile = &proofHashes, out
	p.print(r, func() {
		printHead(p.w, "new tree head", nw)
		fmt.Fprintf(p.w, "CONSISTENT: the log of size %d extends the log of size %d (%d proof hashes)\n", nw.Head.Size, old.Head.Size, proofHashes)
		if out != "" {
			fmt.Fprintf(p.w, "proof written to %s\n", out)
		}
	})
}

func (p logPrinter) inconsistent(old *protocol.SignedTreeHead, err error) {
	r := p.withFrom(logResult{ServerID: string(p.server.ID), ServerPeer: p.server.PeerID.String()}, old, false)
	r.Error = err.Error()
	p.print(r, func() { fmt.Fprintf(p.w, "INCONSISTENT: %v\n", err) })
}
