package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// The v3 example (PROTOCOL.md §13.4): the v2 receipt of §12.5, the fresh
// head of the same tree that the authority signs a heartbeat later
// (logExample.fresh), and the cosignatures of that head by the witnesses
// 3000 and 3001.

// witnessIDs are the witnesses that cosign, in the receipt's order.
var witnessIDs = []identity.ID{"3000", "3001"}

// cosignTimes are what the witnesses' clocks read when they cosign the
// fresh head: well within the default clock tolerance (5 s) of its time.
var cosignTimes = []time.Time{
	time.Date(2026, 11, 25, 12, 1, 1, 500000000, time.UTC),
	time.Date(2026, 11, 25, 12, 1, 2, 250000000, time.UTC),
}

// witnessTolerance is the policy's tolerance between a cosignature's
// time and its head's (§13.4), as `tsnode verify` defaults it.
const witnessTolerance = 5 * time.Second

type witnessExample struct {
	head    *protocol.SignedTreeHead // the cosigned head
	cosigs  []*protocol.SignedCosignature
	receipt []byte // the v3 receipt's JSON
}

// buildWitnessed cosigns ex.fresh as the witnesses and makes the v3
// receipt of v2 (the v2 receipt of the example). It checks the receipt
// with VerifyWitnessed, 2 of 3000 and 3001 within witnessTolerance, and
// that each witness check of §13.3 holds.
func buildWitnessed(testdata string, dir *identity.Directory, trust *protocol.Trust, ex *logExample, v2 *protocol.Receipt, docHash []byte) (*witnessExample, error) {
	head := ex.fresh
	old := ex.stamps[exampleIndex].Head
	// The head extends the receipt's: same tree, dated later. The
	// consistency proof between equal sizes is empty.
	if err := protocol.CheckConsistency(old.Head, head.Head, nil); err != nil {
		return nil, fmt.Errorf("the fresh head does not extend the receipt's: %w", err)
	}
	if !head.Head.Time.After(old.Head.Time) || head.Head.Root != old.Head.Root {
		return nil, errors.New("the fresh head is not a later head of the same tree")
	}
	w := &witnessExample{head: head}
	for i, id := range witnessIDs {
		key, err := loadKey(testdata, id)
		if err != nil {
			return nil, err
		}
		e, err := dir.Lookup(id)
		if err != nil {
			return nil, err
		}
		if d := cosignTimes[i].Sub(head.Head.Time); d < 0 || d > witnessTolerance {
			return nil, fmt.Errorf("witness %s cosigns %v after the head", id, d)
		}
		sc, err := protocol.SignCosignature(key, protocol.NewCosignature(head.Head, e, cosignTimes[i]))
		if err != nil {
			return nil, err
		}
		if again, err := protocol.Sign(key, sc.Encoded); err != nil || string(again) != string(sc.Signature) {
			return nil, errors.New("cosignature is not reproducible")
		}
		if _, err := parseRecord(sc.Encoded); err != nil {
			return nil, fmt.Errorf("the specification's cosignature encoding differs from the witness's: %w", err)
		}
		w.cosigs = append(w.cosigs, sc)
	}
	w.receipt = protocol.NewWitnessedReceipt(v2, head, nil, w.cosigs).Marshal()

	parsed, err := protocol.ParseReceipt(w.receipt)
	if err != nil {
		return nil, err
	}
	policy, err := protocol.NewWitnessPolicy(dir, 2, witnessTolerance, witnessIDs...)
	if err != nil {
		return nil, err
	}
	_, good, err := parsed.VerifyWitnessed(trust, policy, docHash, nil)
	if err != nil {
		return nil, fmt.Errorf("v3 example receipt: %w", err)
	}
	if len(good) != len(witnessIDs) {
		return nil, fmt.Errorf("v3 example receipt: %d good cosignatures, want %d", len(good), len(witnessIDs))
	}
	return w, nil
}

// cosignatureFields lists a cosignature's fields (§13.3), tag first.
func cosignatureFields(c *protocol.Cosignature) []field {
	return []field{
		{"tag", []byte(protocol.CosignatureTag), true, ""},
		{"server_id", []byte(c.ServerID), true, ""},
		{"server_peer_id", []byte(c.ServerPeer.String()), true, ""},
		{"size", binary.BigEndian.AppendUint64(nil, c.Size), false, fmt.Sprintf("u64 big-endian = %d", c.Size)},
		{"root_hash", c.Root[:], false, "the head's root hash"},
		{"head_time", []byte(protocol.FormatTime(c.HeadTime)), true, ""},
		{"witness_id", []byte(c.WitnessID), true, ""},
		{"witness_peer_id", []byte(c.WitnessPeer.String()), true, ""},
		{"time", []byte(protocol.FormatTime(c.Time)), true, ""},
	}
}

// witnessSection is §12.7.
func witnessSection(ex *logExample, w *witnessExample) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	old, head := ex.stamps[exampleIndex].Head, w.head

	p("### 12.7 A witnessed receipt\n\n")
	p("No stamp follows batch 3. A heartbeat (one minute, §13.2) after its head, the authority's clock reads %s and it signs a fresh head of the same tree: ", protocol.FormatTime(head.Head.Time))
	p("size %d, the same root hash, only the time differs (field 5, offset %d, %d bytes). ", head.Head.Size, len(head.Encoded)-30, len(protocol.TimeLayout))
	p("SHA-256 of that tree head, the digest that is signed:\n\n```\n%x\n```\n\n", sha256.Sum256(head.Encoded))
	p("Its signature (base64):\n\n```\n%s\n```\n\n", wrap(base64.StdEncoding.EncodeToString(head.Signature), 76))
	p("The witnesses `%s` and `%s` cosign it (§13.3), their clocks reading %s and %s, within the default tolerance of %d s of the head's time. ",
		witnessIDs[0], witnessIDs[1], protocol.FormatTime(cosignTimes[0]), protocol.FormatTime(cosignTimes[1]), witnessTolerance/time.Second)
	p("The v3 receipt takes the v2 receipt of §12.5 and this head as its `cosigned_head`. ")
	p("The cosigned head extends the receipt's tree head (size %d at %s): it is of the same size and root, dated later, ", old.Head.Size, protocol.FormatTime(old.Head.Time))
	p("so no proof ties them and the receipt has no `consistency_proof` (§13.4).\n\n")
	c := w.cosigs[0]
	p("The cosignature of `%s`, %d bytes; fields 1 to 5 are those of the tree head:\n\n", c.Cosig.WitnessID, len(c.Encoded))
	p("```\n%s```\n\n", fieldDump(cosignatureFields(c.Cosig)))
	p("SHA-256 of the cosignature, the digest that the witness signs:\n\n```\n%x\n```\n\n", sha256.Sum256(c.Encoded))
	p("The cosignature of `%s` differs only in fields 6 to 8 (%d bytes in all).\n\n", w.cosigs[1].Cosig.WitnessID, len(w.cosigs[1].Encoded))
	p("Receipt `docs/example/hello.txt.v3.receipt` (%d bytes): the v2 receipt of §12.5 with `format` `%s`, then `cosigned_head` and `cosignatures`. ", len(w.receipt), protocol.ReceiptFormatV3)
	p("`tsnode verify --keys internal/testkeys/testdata --witness %s --witness %s --witnesses 2 --receipt docs/example/hello.txt.v3.receipt docs/example/hello.txt` accepts it; ", witnessIDs[0], witnessIDs[1])
	p("§11.5 checks its first cosignature with openssl and `docs/example/%s.pem`.\n\n", witnessIDs[0])
	p("```json\n%s```\n", w.receipt)
	return b.String()
}
