package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tsnode verify", stderr)
	receiptPath := fs.String("receipt", "", "receipt `file` to check (required)")
	keys := fs.String("keys", defaultKeysDir, "keys directory `DIR` holding the server's public key")
	consistency := fs.String("consistency", "", "instead, check a consistency proof `file` written by tsnode log --out")
	trust := addTrustFlag(fs, "accept only signatures of this authority `ID` (repeatable; default server)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *consistency != "" {
		if *receiptPath != "" || len(pos) != 0 {
			return usageErr("--consistency takes no receipt or document")
		}
		return verifyConsistency(*consistency, *keys, trust, stdout)
	}
	if *receiptPath == "" || len(pos) != 1 {
		return usageErr("verify needs --receipt R and exactly one document FILE")
	}
	doc := pos[0]
	policy, err := loadTrust(*keys, trust)
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
	st, err := rc.Verify(policy, hash)
	if err != nil {
		fmt.Fprintf(stdout, "INVALID: %s: %v\n", *receiptPath, err)
		return errReported
	}
	fmt.Fprintf(stdout, "VALID: %s (sha-256 %x) existed at %s\n  serial %d, signed by %s (%s), requested by %s\n",
		doc, st.DocumentHash, protocol.FormatTime(st.Time), st.Serial, st.ServerID, st.ServerPeer, st.RequesterID)
	return nil
}

func verifyConsistency(path, keys string, trust *trustFlag, stdout io.Writer) error {
	policy, err := loadTrust(keys, trust)
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
	if err := c.Verify(policy); err != nil {
		fmt.Fprintf(stdout, "INVALID: %s: %v\n", path, err)
		return errReported
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
