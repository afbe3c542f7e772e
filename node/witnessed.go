package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/node/witness"
	"github.com/tsnode/tsnode/protocol"
)

// Witnessed receipts (PROTOCOL.md §13.4): after a stamp, wait for a head
// at or after the stamp's that K of the chosen witnesses cosigned, and
// tie the stamp's head to it with a consistency proof from the server.

// ErrNotWitnessed wraps a stamp that did not get its cosignatures in
// time; its v2 receipt was written all the same.
var ErrNotWitnessed = protocol.ErrNotWitnessed

// notWitnessed wraps err in ErrNotWitnessed once.
func notWitnessed(err error) error {
	if errors.Is(err, ErrNotWitnessed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNotWitnessed, err)
}

// Witnessing is what a requester (or tsnode upgrade) needs to turn v2
// receipts of one authority into witnessed ones.
type Witnessing struct {
	policy    *protocol.WitnessPolicy
	trust     *protocol.Trust
	tolerance time.Duration
	gossip    *witness.Gossip
	collector *witness.Collector
	log       *logsync.Client
	conns     *gossiping
}

// NewWitnessing joins the topic of server on h (whose peers must be in
// dir) and starts collecting the cosignatures policy counts; peers are
// dialed (and redialed) so that the cosignatures need not come through
// the server alone.
func NewWitnessing(h host.Host, dir identity.Peers, trust *protocol.Trust, server identity.Entry, policy *protocol.WitnessPolicy, tolerance time.Duration, peers []peer.AddrInfo) (*Witnessing, error) {
	if tolerance <= 0 {
		tolerance = witness.DefaultClockTolerance
	}
	g, err := witness.NewGossip(h, dir, trust)
	if err != nil {
		return nil, err
	}
	c, err := witness.NewCollector(g, server.ID, policy)
	if err != nil {
		g.Close()
		return nil, err
	}
	w := &Witnessing{policy: policy, trust: trust, tolerance: tolerance, gossip: g, collector: c,
		log: logsync.NewClient(h, server, trust), conns: &gossiping{gossip: g}}
	w.conns.keepConnected(h, peers)
	return w, nil
}

// Close stops collecting.
func (w *Witnessing) Close() error {
	w.collector.Close()
	w.conns.close()
	return nil
}

// Upgrade returns the witnessed receipt of the v2 (or v3) receipt rc, or
// an error (ErrNotWitnessed) that names the witnesses that cosigned and
// those that did not, and the server's clock if that is why.
func (w *Witnessing) Upgrade(ctx context.Context, rc *protocol.Receipt) (*protocol.Receipt, error) {
	if rc.Format == protocol.ReceiptFormatV1 {
		return nil, fmt.Errorf("%w: a v1 (one-shot) receipt has no tree head to cosign", ErrNotWitnessed)
	}
	sth, err := rc.TreeHeadOf()
	if err != nil {
		return nil, err
	}
	// The clock is compared when the wait starts: after a wait as long
	// as the tolerance, any head would look behind this clock.
	asked := time.Now()
	head, cosigs, err := w.collector.Wait(ctx, sth.Head.Size)
	if err != nil {
		if note := witness.ClockNote(sth.Head.Time, asked, w.tolerance); note != "" {
			err = fmt.Errorf("%w (%s)", err, note)
		}
		return nil, notWitnessed(err)
	}
	var proof tlog.TreeProof
	if head.Head.Size > sth.Head.Size {
		if _, proof, err = w.log.Fetch(ctx, sth.Head.Size, head.Head.Size); err != nil {
			return nil, fmt.Errorf("%w: the proof from the stamp's head to the cosigned one: %w", ErrNotWitnessed, err)
		}
	}
	v3 := protocol.NewWitnessedReceipt(rc, head, proof, cosigs)
	// Checked as a verifier will: a receipt that would not verify is not
	// written.
	if _, _, err := v3.VerifyWitnessed(w.trust, w.policy, nil, nil); err != nil {
		return nil, notWitnessed(err)
	}
	return v3, nil
}

// UpgradeReceipt is tsnode upgrade: on a dial-only host of id, it
// reaches the authority's server at serverAddr (and peers), waits for a
// head at or after rc's that policy's witnesses cosigned, and returns the
// witnessed receipt.
func UpgradeReceipt(ctx context.Context, id *Identity, trust *protocol.Trust, policy *protocol.WitnessPolicy, serverAddr string, peerAddrs []string, rc *protocol.Receipt) (*protocol.Receipt, error) {
	server, info, err := ResolvePeer(id.Dir, identity.ID(rc.ServerID), serverAddr, id.Retired...)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	peers, err := resolvePeers(id, peerAddrs)
	if err != nil {
		return nil, err
	}
	h, err := NewHost(id, nil)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	w, err := NewWitnessing(h, id.Dir, trust, server, policy, 0, append([]peer.AddrInfo{info}, peers...))
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := h.Connect(ctx, info); err != nil {
		return nil, fmt.Errorf("cannot reach server %s at %v: %w", server.ID, info.Addrs, ExplainDialError(err, server.ID))
	}
	return w.Upgrade(ctx, rc)
}
