package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/protocol"
)

// cmdLogCheck is `tsnode log check`: the full offline check of a
// server's data directory, the one a server runs at start, without
// changing anything. It needs no private key, only the server's public
// key for the head file's signature. The log is opened read-only, which
// a running server's lock refuses: stop the server first.
func cmdLogCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode log check", stderr)
	data := fs.String("data", node.DefaultDataDir, "the server's data `DIR` (log.db, guard and head.json)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR`: the server's public key checks the head file's signature")
	serverID := fs.String("server-id", string(identity.ServerID), "the server's id in the identity directory")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("log check takes no arguments")
	}
	dir, err := identity.LoadDirectory(*keys)
	if err != nil {
		return err
	}
	retired, err := protocol.LoadRetiredKeys(*keys, dir)
	if err != nil {
		return err
	}
	trust, err := protocol.NewTrust(dir, retired, identity.ID(*serverID))
	if err != nil {
		return fmt.Errorf("--server-id: %w", err)
	}
	rep, err := logstore.Check(*data, identity.ID(*serverID), trust)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: every page, leaf and stored hash checks out\n  size  %d stamps\n  root  %x\n",
		filepath.Join(*data, merklelog.FileName), rep.Size, rep.Root[:])
	if rep.Size > 0 {
		fmt.Fprintf(stdout, "  time  %s\n", protocol.FormatTime(rep.Time))
	}
	guardPath := filepath.Join(*data, logstore.GuardFileName)
	if g := rep.Guard; g != nil {
		torn := ""
		if g.Torn {
			torn = " (one slot torn, as a power cut during a write leaves it; the other slot taken)"
		}
		fmt.Fprintf(stdout, "%s: size %d, root %x: the log holds it%s\n", guardPath, g.Size, g.Root[:], torn)
	} else {
		fmt.Fprintf(stdout, "%s: none yet (the server writes it with its first tree head)\n", guardPath)
	}
	headPath := filepath.Join(*data, logstore.HeadFileName)
	if h := rep.Head; h != nil {
		fmt.Fprintf(stdout, "%s: signed by %s, size %d, root %x: the log holds it\n", headPath, h.Head.ServerID, h.Head.Size, h.Head.Root[:])
	} else {
		fmt.Fprintf(stdout, "%s: none yet (the server writes it with its first tree head)\n", headPath)
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}
