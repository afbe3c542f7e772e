package main

import (
	"errors"
	"fmt"
	"io"

	"tsnode/identity"
	"tsnode/protocol"
)

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode verify", stderr)
	receiptPath := fs.String("receipt", "", "receipt `file` to check (required)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR` holding the server's public key")
	consistency := fs.String("consistency", "", "instead, check a consistency proof `file` written by tsnode log --out")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *consistency != "" {
		if *receiptPath != "" || len(pos) != 0 {
			return usageErr("--consistency takes no receipt or document")
		}
		return verifyConsistency(*consistency, *keys, stdout)
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

func verifyConsistency(path, keys string, stdout io.Writer) error {
	dir, err := identity.LoadDirectory(keys)
	if err != nil {
		return err
	}
	c, err := protocol.ReadConsistencyFile(path)
	if errors.Is(err, protocol.ErrMalformedReceipt) {
		fmt.Fprintf(stdout, "INVALID: %v\n", err)
		return errReported
	}
	if err != nil {
		return err
	}
	if err := c.Verify(dir); err != nil {
		fmt.Fprintf(stdout, "INVALID: %s: %v\n", path, err)
		return errReported
	}
	fmt.Fprintf(stdout, "VALID: the log of size %d extends the log of size %d\n", c.New.Size, c.Old.Size)
	return nil
}
