package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	if len(args) > 0 && args[0] == "backup" {
		return cmdLogBackup(args[1:], stdout, stderr)
	}
	fs := newFlags("tsnode log", stderr)
	server := fs.String("server", "", "the server's `multiaddr` (/p2p/ optional; required)")
	serverID := fs.String("server-id", string(identity.ServerID), "the server's id in the identity directory")
	idFlag := fs.String("id", "", "connect as this enrolled `ID`, with its private key (and passphrase); default: "+string(identity.RequesterID)+
		" if its private key is in --keys, else an ephemeral Ed25519 libp2p identity made for this run, which needs no private key and no passphrase, only the public keys (the server must run with --public-log)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR` (public/ is enough for an ephemeral identity)")
	passFile := fs.String("passphrase-file", "", "read the private key's passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
	from := fs.String("from", "", "prove that the log extends the tree head of this `receipt` (v2)")
	to := fs.String("to", "", "... up to the tree head of this later `receipt` (default: the server's latest head)")
	out := fs.String("out", "", "write the consistency proof to this `file` (check it with tsnode verify --consistency)")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object (server_id, server_peer, size, root, time, empty; with --from: from_size, from_root, consistent, proof_hashes, proof_file, error); nothing on stdout when the command fails otherwise")
	serial := fs.Int64("serial", -1, "prove that the stamp or RFC 3161 token of this `serial` is in the log, under the latest signed head")
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
	if *serial >= 0 && *from != "" {
		return usageErr("--serial and --from are two different proofs: give one")
	}
	id, ephemeral, err := auditorIdentity(*keys, *idFlag, *passFile, mode)
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
	// Refused as a stranger, the connection or the stream fails; say why.
	explain := func(err error) error {
		if ephemeral && !errors.Is(err, logsync.ErrEmptyLog) && !protocol.IsVerificationError(err) {
			return fmt.Errorf("%w (this auditor connects with an ephemeral identity, not in the server's identity directory: the server admits it only if it runs with --public-log; else give --id of an enrolled key)", err)
		}
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), node.DefaultConnectTimeout)
	defer cancel()
	if err := h.Connect(ctx, info); err != nil {
		return explain(fmt.Errorf("cannot reach server %s at %v: %w", entry.ID, info.Addrs, node.ExplainDialError(err, entry.ID)))
	}
	c := logsync.NewClient(h, entry, policy)
	p := logPrinter{w: stdout, json: *jsonOut, server: entry}
	if *serial >= 0 {
		return proveSerial(ctx, c, p, uint64(*serial), explain)
	}
	if oldHead == nil {
		latest, _, err := c.Fetch(ctx, 0, 0)
		if errors.Is(err, logsync.ErrEmptyLog) {
			p.empty()
			return nil
		}
		if err != nil {
			return explain(err)
		}
		p.head("latest tree head", latest)
		return nil
	}
	newHead, proof, err := c.Prove(ctx, oldHead, newHead)
	switch {
	case errors.Is(err, logsync.ErrEmptyLog):
		// Unsigned, so not a proof of anything, but a server that held
		// the receipt's head must not say so.
		err = fmt.Errorf("%w, but %s holds its tree head of size %d: the log was lost or replaced", err, *from, oldHead.Head.Size)
		p.inconsistent(oldHead, err)
		return errReported
	case protocol.IsVerificationError(err):
		p.inconsistent(oldHead, err)
		return errReported
	case err != nil:
		return explain(err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, marshalIndent(protocol.NewConsistency(oldHead, newHead, proof)), 0o644); err != nil {
			return fmt.Errorf("cannot write consistency proof: %w", err)
		}
	}
	p.consistent(oldHead, newHead, len(proof), *out)
	return nil
}

// auditorIdentity is who tsnode log connects as (see its --id flag).
func auditorIdentity(keys, id, passFile string, mode *keyMode) (nid *node.Identity, ephemeral bool, err error) {
	if id == "" {
		if _, err := os.Stat(identity.PrivateKeyPath(keys, identity.RequesterID)); errors.Is(err, fs.ErrNotExist) {
			dir, err := identity.LoadDirectory(keys)
			if err != nil {
				return nil, false, err
			}
			retired, err := protocol.LoadRetiredKeys(keys, dir)
			if err != nil {
				return nil, false, err
			}
			nid, err := node.EphemeralIdentity(dir, retired)
			return nid, true, err
		}
		id = string(identity.RequesterID)
	}
	if _, err := identity.ParseID(id); err != nil {
		return nil, false, usageErr("--id: %v", err)
	}
	nid, err = loadIdentity(keys, identity.ID(id), passFile, mode)
	return nid, false, err
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
