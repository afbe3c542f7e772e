package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/witness"
	"github.com/tsnode/tsnode/protocol"
)

// WitnessID is the witness role's default id.
const witnessID identity.ID = "3000"

// defaultWitnessData is the witness role's default --data.
const defaultWitnessData = "./tsnode-witness"

// witnessFlags hold the flags of witnessing (the witness role, a verifier
// with --cosign) and of requiring cosignatures (--witness, --witnesses).
type witnessFlags struct {
	servers, peers stringList
	cosign, mdns   bool
	data           string
	tolerance      time.Duration
	required       idList
	k              int
	interval       time.Duration // a server's --checkpoint-interval
}

// idList is a repeatable flag of ids.
type idList []identity.ID

func (l *idList) String() string { return fmt.Sprint(*l) }
func (l *idList) Set(v string) error {
	id, err := identity.ParseID(v)
	if err != nil {
		return err
	}
	*l = append(*l, id)
	return nil
}

var (
	// cosignFlags: how a node witnesses. The witness role always does;
	// a verifier with --cosign.
	cosignFlags = flagGroup{"Witnessing", func(fs *flag.FlagSet, f *roleFlags) {
		w := f.witnessFlags()
		if f.role == "verifier" {
			fs.BoolVar(&w.cosign, "cosign", false, "also witness: cosign the trusted authorities' tree heads (needs --server and --data)")
			fs.StringVar(&w.data, "data", "", "the witness state and evidence `DIR` (with --cosign)")
		} else {
			fs.StringVar(&w.data, "data", defaultWitnessData, "the witness state and evidence `DIR`")
		}
		fs.Var(&w.servers, "server", "an authority's server `multiaddr`, for its log protocol (repeatable; /p2p/ names the authority, else the only one trusted)")
		fs.Var(&w.peers, "peer", "another witness's `multiaddr` with /p2p/, peered directly so that no server is the only path between witnesses (repeatable)")
		fs.BoolVar(&w.mdns, "mdns", false, "find the directory's peers on the LAN by mDNS")
		fs.DurationVar(&w.tolerance, "clock-tolerance", witness.DefaultClockTolerance, "cosign only heads dated within this `duration` of this clock")
	}}
	// requireFlags: which cosignatures a receipt needs.
	requireFlags = flagGroup{"Witnesses", func(fs *flag.FlagSet, f *roleFlags) {
		addRequireFlags(fs, f.witnessFlags())
	}}
	// requesterWitnessFlags: a requester also dials witnesses directly.
	requesterWitnessFlags = flagGroup{"Witnesses", func(fs *flag.FlagSet, f *roleFlags) {
		w := f.witnessFlags()
		addRequireFlags(fs, w)
		fs.Var(&w.peers, "peer", "a witness's `multiaddr` with /p2p/, to get cosignatures from it directly as well as through the server (repeatable)")
	}}
	checkpointFlags = flagGroup{"Witnesses", func(fs *flag.FlagSet, f *roleFlags) {
		fs.DurationVar(&f.witnessFlags().interval, "checkpoint-interval", witness.DefaultCheckpointInterval, "publish the latest tree head to the witnesses this often when the log grew (a fresh head of the same tree once a minute when it did not)")
	}}
)

func addRequireFlags(fs *flag.FlagSet, w *witnessFlags) {
	fs.Var(&w.required, "witness", "a witness `ID` whose cosignatures count (repeatable; with --witnesses)")
	fs.IntVar(&w.k, "witnesses", 0, "require `K` cosignatures from the --witness ids (0: none)")
}

// witnessFlags is f's witness flags, made on first use.
func (f *roleFlags) witnessFlags() *witnessFlags {
	if f.wit == nil {
		f.wit = &witnessFlags{}
	}
	return f.wit
}

// policy is the witness policy of --witness and --witnesses, nil when
// none is required.
func (w *witnessFlags) policy(dir *identity.Directory) (*protocol.WitnessPolicy, error) {
	if w == nil || (w.k == 0 && len(w.required) == 0) {
		return nil, nil
	}
	if w.k == 0 {
		return nil, usageErr("--witness without --witnesses K: say how many cosignatures a receipt needs")
	}
	if len(w.required) == 0 {
		return nil, usageErr("--witnesses %d without --witness: name the witnesses whose cosignatures count", w.k)
	}
	p, err := protocol.NewWitnessPolicy(dir, w.k, witness.DefaultClockTolerance, w.required...)
	if err != nil {
		return nil, usageErr("--witnesses: %v", err)
	}
	return p, nil
}

// check checks the witness flags' values.
func (w *witnessFlags) check(role string) error {
	switch {
	case w == nil:
		return nil
	case w.tolerance < 0 || w.tolerance > time.Hour:
		return usageErr("--clock-tolerance %v: want 0 to 1h", w.tolerance)
	case w.interval < 0 || w.interval > witness.Heartbeat:
		return usageErr("--checkpoint-interval %v: want 0 to %v", w.interval, witness.Heartbeat)
	case w.k < 0:
		return usageErr("--witnesses %d: want 0 or more", w.k)
	case role == "verifier" && !w.cosign && (len(w.servers) > 0 || len(w.peers) > 0 || w.mdns || w.data != ""):
		return usageErr("--server, --peer, --mdns and --data are for a verifier that witnesses: add --cosign")
	case (role == "witness" || w.cosign) && len(w.servers) == 0:
		return usageErr("a witness needs --server: the authority's log protocol, for consistency proofs")
	case w.cosign && w.data == "":
		return usageErr("--cosign needs --data DIR for the witness state")
	}
	return nil
}

// options are the node's witnessing options.
func (w *witnessFlags) options(trust *protocol.Trust, m *metrics.Witness) node.WitnessOptions {
	o := node.WitnessOptions{Trust: trust, Servers: w.servers, Peers: w.peers, DataDir: w.data, Tolerance: w.tolerance, MDNS: w.mdns}
	if m != nil {
		o.Metrics = m
	}
	return o
}

func runWitness(ctx context.Context, stop func(), id *node.Identity, f roleFlags, stdout io.Writer) error {
	trust, err := f.trust.policy(id.Dir, id.Retired)
	if err != nil {
		return err
	}
	m, err := listenMetrics(f.metrics)
	if err != nil {
		return err
	}
	defer m.close()
	var wm *metrics.Witness
	if f.metrics != "" {
		wm = metrics.NewWitness(metrics.New())
	}
	svc, err := node.StartWitness(id, listenOr(f.listen, node.DefaultWitnessPort), f.wit.options(trust, wm))
	if err != nil {
		return err
	}
	ops := opsSignals(false)
	go serveOps(ctx, ops, svc, f)
	fmt.Fprintf(stdout, "witness %s (peer %s) ready, following %v, state in %s\n", id.Self.ID, id.Self.PeerID, trust.Authorities(), f.wit.data)
	if wm != nil {
		m.serve(wm.Registry, svc, "witness", stdout)
	}
	svc.PrintAddrs(stdout, "witness")
	return serveUntilSignal(ctx, stop, svc, "witness", f.drainTimeout, stdout)
}
