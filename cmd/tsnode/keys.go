package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/protocol"
)

const defaultKeysDir = node.DefaultKeysDir

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode keygen", stderr)
	idFlag := fs.String("id", "", "id to create a key for, e.g. server, 1000 or 2000 (required)")
	keys := fs.String("keys", defaultKeysDir, "keys directory: writes `DIR`/private/<id>.pem (0600) and DIR/public/<id>.pem")
	force := fs.Bool("force", false, "replace existing key files")
	rotate := fs.Bool("rotate", false, "replace id's current key by a new one, keeping the old one as a retired key: the old key signs a rotation statement\n"+
		"into DIR/public/retired/, its private key moves to DIR/private/retired/, and the new private key is encrypted with the\n"+
		"same passphrase as the old one (the passphrase opens the current key)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
	mode := addKeyModeFlag(fs, stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("keygen takes no arguments, got %q", pos)
	}
	if *idFlag == "" {
		return usageErr("keygen needs --id")
	}
	id, err := identity.ParseID(*idFlag)
	if err != nil {
		return usageErr("--id: %v", err)
	}
	if *rotate {
		if *force {
			return usageErr("--rotate and --force exclude each other: --rotate keeps the old key as a retired one, --force discards it")
		}
		return rotateKey(*keys, id, *passFile, mode, stdout)
	}
	// Refuse before asking for a passphrase and generating a key.
	if !*force {
		if err := identity.CheckNoKeyPair(*keys, id); err != nil {
			return err
		}
	}
	pass, err := readPassphrase(*passFile, true, mode)
	if err != nil {
		return err
	}
	key, err := identity.GenerateKey()
	if err != nil {
		return fmt.Errorf("failed to generate key: %w", err)
	}
	if err := identity.WriteKeyPair(*keys, id, key, pass, *force); err != nil {
		return err
	}
	pid, err := identity.PeerIDFromPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "id          %s\npeer ID     %s\nprivate key %s\npublic key  %s\n",
		id, pid, identity.PrivateKeyPath(*keys, id), identity.PublicKeyPath(*keys, id))
	return nil
}

func cmdID(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode id", stderr)
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR` whose public/ folder is listed")
	asJSON := fs.Bool("json", false, "print one JSON object per id (fields in README)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("id takes no arguments, got %q", pos)
	}
	dir, err := identity.LoadDirectory(*keys)
	if err != nil {
		return err
	}
	retired, err := protocol.LoadRetiredKeys(*keys, dir)
	if err != nil {
		return err
	}
	if *asJSON {
		printIDsJSON(stdout, dir, retired)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPEER ID")
	for _, e := range dir.Entries() {
		fmt.Fprintf(tw, "%s\t%s\n", e.ID, e.PeerID)
		printRetired(tw, e.ID, retired)
	}
	return tw.Flush()
}

// idJSON is id's --json object, one per id (README, "JSON output").
type idJSON struct {
	ID      string        `json:"id"`
	PeerID  string        `json:"peer_id"`
	Retired []retiredJSON `json:"retired,omitempty"`
}

type retiredJSON struct {
	PeerID    string `json:"peer_id"`
	RetiredAt string `json:"retired_at"`
	Successor string `json:"successor"`
}

func printIDsJSON(w io.Writer, dir *identity.Directory, retired []protocol.RetiredKey) {
	for _, e := range dir.Entries() {
		out := idJSON{ID: string(e.ID), PeerID: e.PeerID.String()}
		for i := len(retired) - 1; i >= 0; i-- {
			if k := retired[i]; k.ID == e.ID {
				out.Retired = append(out.Retired, retiredJSON{PeerID: k.PeerID.String(), RetiredAt: protocol.FormatTime(k.RetiredAt), Successor: k.Successor.String()})
			}
		}
		writeJSONLine(w, out)
	}
}
