package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/protocol"
)

func cmdLog(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "check" {
		return cmdLogCheck(args[1:], stdout, stderr)
	}
	fs := newFlags("tsnode log", stderr)
	server := fs.String("server", "", "the server's `multiaddr` (/p2p/ optional; required)")
	serverID := fs.String("server-id", string(identity.ServerID), "the server's id in the identity directory")
	idFlag := fs.String("id", string(identity.RequesterID), "this node's id (its key is the libp2p identity)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR`")
	passFile := fs.String("passphrase-file", "", "read the private key's passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
	from := fs.String("from", "", "prove that the log extends the tree head of this `receipt` (v2)")
	to := fs.String("to", "", "... up to the tree head of this later `receipt` (default: the server's latest head)")
	out := fs.String("out", "", "write the consistency proof to this `file` (check it with tsnode verify --consistency)")
	trust := addTrustFlag(fs, "accept only tree heads of this authority `ID` (repeatable; default server)")
	mode := addKeyModeFlag(fs, stderr)
	logs := addLogFlags(fs, ptr("warn"), false)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *server == "" {
		return usageErr("log needs --server MADDR and takes no arguments")
	}
	if err := logs.setup(); err != nil {
		return err
	}
	if *to != "" && *from == "" {
		return usageErr("--to needs --from")
	}
	if *out != "" && *from == "" {
		return usageErr("--out needs --from")
	}
	id, err := loadIdentity(*keys, identity.ID(*idFlag), *passFile, mode)
	if err != nil {
		return err
	}
	policy, err := trust.policy(id.Dir, id.Retired)
	if err != nil {
		return err
	}
	if err := policy.CheckAuthority(identity.ID(*serverID)); err != nil {
		return fmt.Errorf("--server-id: %w", err)
	}
	var oldHead, newHead *protocol.SignedTreeHead
	if *from != "" {
		if oldHead, err = receiptHead(*from); err != nil {
			return err
		}
	}
	if *to != "" {
		if newHead, err = receiptHead(*to); err != nil {
			return err
		}
	}
	entry, info, err := node.ResolvePeer(id.Dir, identity.ID(*serverID), *server, id.Retired...)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	h, err := node.NewHost(id, nil)
	if err != nil {
		return err
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), node.DefaultConnectTimeout)
	defer cancel()
	if err := h.Connect(ctx, info); err != nil {
		return fmt.Errorf("cannot reach server %s at %v: %w", entry.ID, info.Addrs, node.ExplainDialError(err, entry.ID))
	}
	c := logsync.NewClient(h, entry, policy)
	if oldHead == nil {
		latest, _, err := c.Fetch(ctx, 0, 0)
		if err != nil {
			return err
		}
		printHead(stdout, "latest tree head", latest)
		return nil
	}
	newHead, proof, err := c.Prove(ctx, oldHead, newHead)
	if protocol.IsVerificationError(err) {
		fmt.Fprintf(stdout, "INCONSISTENT: %v\n", err)
		return errReported
	}
	if err != nil {
		return err
	}
	printHead(stdout, "new tree head", newHead)
	fmt.Fprintf(stdout, "CONSISTENT: the log of size %d extends the log of size %d (%d proof hashes)\n", newHead.Head.Size, oldHead.Head.Size, len(proof))
	if *out != "" {
		if err := os.WriteFile(*out, marshalIndent(protocol.NewConsistency(oldHead, newHead, proof)), 0o644); err != nil {
			return fmt.Errorf("cannot write consistency proof: %w", err)
		}
		fmt.Fprintf(stdout, "proof written to %s\n", *out)
	}
	return nil
}

// receiptHead reads a v2 receipt's signed tree head.
func receiptHead(path string) (*protocol.SignedTreeHead, error) {
	rc, err := protocol.ReadReceiptFile(path)
	if err != nil {
		return nil, err
	}
	if rc.Format != protocol.ReceiptFormatV2 {
		return nil, fmt.Errorf("%s: a %s receipt has no tree head; only %s receipts do", path, rc.Format, protocol.ReceiptFormatV2)
	}
	sth, err := rc.TreeHeadOf()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sth, nil
}

func printHead(w io.Writer, label string, sth *protocol.SignedTreeHead) {
	h := sth.Head
	fmt.Fprintf(w, "%s (signature verified)\n  server  %s (%s)\n  size    %d\n  root    %s\n  time    %s\n",
		label, h.ServerID, h.ServerPeer, h.Size, hex.EncodeToString(h.Root[:]), protocol.FormatTime(h.Time))
}
