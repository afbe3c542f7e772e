package main

import (
	"fmt"
	"io"

	"tsnode/identity"
	"tsnode/protocol"
)

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode verify", stderr)
	receiptPath := fs.String("receipt", "", "receipt `file` to check (required)")
	keys := fs.String("keys", defaultKeysDir, "keys `DIR`ectory holding the server's public key")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *receiptPath == "" || len(pos) != 1 {
		return usageErr("verify needs --receipt R and exactly one document FILE")
	}
	doc := pos[0]
	dir, err := identity.LoadDirectory(*keys)
	if err != nil {
		return err
	}
	rc, err := protocol.ReadReceiptFile(*receiptPath)
	if err != nil {
		fmt.Fprintf(stdout, "INVALID: %v\n", err)
		return errReported
	}
	hash, err := protocol.HashFile(doc)
	if err != nil {
		return err
	}
	st, err := rc.Verify(dir, hash)
	if err != nil {
		fmt.Fprintf(stdout, "INVALID: %s: %v\n", *receiptPath, err)
		return errReported
	}
	fmt.Fprintf(stdout, "VALID: %s (sha-256 %x) existed at %s\n  serial %d, signed by %s (%s), requested by %s\n",
		doc, st.DocumentHash, protocol.FormatTime(st.Time), st.Serial, st.ServerID, st.ServerPeer, st.RequesterID)
	return nil
}
