package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/protocol"
)

// defaultUpgradeTimeout covers the next fresh head (once a minute) and
// its cosignatures.
const defaultUpgradeTimeout = 2 * time.Minute

// cmdUpgrade turns a v2 receipt into a witnessed (v3) one, as ots
// upgrade does: it waits for a head at or after the receipt's that K
// witnesses cosign, and writes the receipt with it.
func cmdUpgrade(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode upgrade", stderr)
	receiptPath := fs.String("receipt", "", "the v2 receipt `file` to upgrade (required; replaced unless --out)")
	out := fs.String("out", "", "write the witnessed receipt to this `file` instead")
	server := fs.String("server", "", "the authority's server `multiaddr` (/p2p/ optional; required)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR`")
	id := fs.String("id", string(identity.RequesterID), "this node's `ID` (any id of the directory with a private key)")
	passFile := fs.String("passphrase-file", "", "read the private key's passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
	mode := addKeyModeFlag(fs, stderr)
	trust := addTrustFlag(fs, "accept only signatures of this authority `ID` (repeatable; default server)")
	timeout := fs.Duration("timeout", defaultUpgradeTimeout, "give up after this `duration`")
	var wit witnessFlags
	addRequireFlags(fs, &wit)
	fs.Var(&wit.peers, "peer", "a witness's `multiaddr` with /p2p/, to get cosignatures from it directly (repeatable)")
	logLevel := "warn"
	logs := addLogFlags(fs, &logLevel, true)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *receiptPath == "" || *server == "" || len(pos) != 0:
		return usageErr("upgrade needs --receipt R, --server MADDR, --witness ID ... and --witnesses K, and no other argument")
	case wit.k == 0:
		return usageErr("upgrade needs --witnesses K and the --witness ids whose cosignatures count")
	case *timeout <= 0:
		return usageErr("--timeout %v: want more than 0", *timeout)
	}
	if err := logs.setup(); err != nil {
		return err
	}
	rc, err := protocol.ReadReceiptFile(*receiptPath)
	if err != nil {
		return fmt.Errorf("--receipt: %w", err)
	}
	nid, err := loadIdentity(*keys, identity.ID(*id), *passFile, mode)
	if err != nil {
		return err
	}
	policy, err := trust.policy(nid.Dir, nid.Retired)
	if err != nil {
		return err
	}
	witnesses, err := wit.policy(nid.Dir)
	if err != nil {
		return err
	}
	if _, err := rc.Verify(policy, nil); err != nil {
		return fmt.Errorf("--receipt %s: %w", *receiptPath, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second signal ends the process
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	w3, err := node.UpgradeReceipt(ctx, nid, policy, witnesses, *server, wit.peers, rc)
	if err != nil {
		return err
	}
	dst := *receiptPath
	if *out != "" {
		dst = *out
	}
	if err := durable.ReplaceFile(dst, w3.Marshal(), 0o644); err != nil {
		return fmt.Errorf("writing the witnessed receipt: %w", err)
	}
	fmt.Fprintf(stdout, "upgraded %s: the head of size %d is cosigned by %d witnesses\n", dst, w3.CosignedHead.Size, len(w3.Cosignatures))
	return nil
}
