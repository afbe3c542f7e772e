package main

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/protocol"
)

// proveSerial is tsnode log --serial N: the leaf at N, its inclusion
// proof under the server's latest signed head, checked by
// protocol.CheckLeaf.
func proveSerial(ctx context.Context, c *logsync.Client, p logPrinter, serial uint64, explain func(error) error) error {
	head, leaf, proof, err := c.FetchLeaf(ctx, serial)
	if err != nil {
		return explain(err)
	}
	r := p.result(head)
	r.Serial = &serial
	info, err := protocol.CheckLeaf(leaf, serial, head.Head, proof)
	included := err == nil
	r.Included = &included
	if err != nil {
		r.Error = err.Error()
		p.print(r, func() {
			fmt.Fprintf(p.w, "INVALID: the server's leaf %d under its head of size %d: %v\n", serial, head.Head.Size, err)
		})
		return errReported
	}
	r.LeafKind, r.LeafTime, r.LeafHash = info.Kind, protocol.FormatTime(info.Time), hex.EncodeToString(info.Hash)
	p.print(r, func() {
		fmt.Fprintf(p.w, "serial %d is in the log: a %s leaf dated %s, hash %s,\n", serial, info.Kind, r.LeafTime, r.LeafHash)
		fmt.Fprintf(p.w, "  under the tree head of size %d (root %s, %s), signature verified, inclusion proof of %d hashes holds\n",
			head.Head.Size, hex.EncodeToString(head.Head.Root[:]), protocol.FormatTime(head.Head.Time), len(proof))
	})
	return nil
}
