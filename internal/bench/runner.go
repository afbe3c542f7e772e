package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/protocol"
)

// Run runs every flow of cfg in turn and returns the report. It returns
// an error when a flow could not run at all; failed stamps are counted
// in the report instead.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	r := &runner{cfg: &cfg}
	if cfg.TSAURL != "" {
		// A server that need not be tsnode: no keys, the standard check.
		if err := r.prepareTSA(ctx); err != nil {
			return nil, err
		}
	} else if err := r.prepareTsnode(); err != nil {
		return nil, err
	}
	if cfg.ServerPID != 0 {
		if err := CheckServerPID(cfg.ServerPID); err != nil {
			return nil, err
		}
	}
	if r.spawns() && cfg.PassphraseFile == "" {
		tmp, err := os.MkdirTemp("", "tsnode-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		r.passFile = filepath.Join(tmp, "passphrase")
		if err := os.WriteFile(r.passFile, cfg.Passphrase, 0o600); err != nil {
			return nil, fmt.Errorf("failed to write the server's passphrase file: %w", err)
		}
	} else {
		r.passFile = cfg.PassphraseFile
	}
	rep := &Report{
		Server: "spawned", CPUs: runtime.NumCPU(),
		Duration: cfg.Duration.Seconds(), OneShotDuration: cfg.OneShotDuration.Seconds(),
		Count: cfg.Count, ReverifyEvery: cfg.Reverify, Mode: "closed",
	}
	if cfg.Open() {
		rep.Mode = "open"
	}
	if slices.ContainsFunc(cfg.Flows, tokenFlow) {
		rep.TokenCheck = tokenCheckTsnode
		if r.tsaChain != nil {
			rep.TokenCheck = tokenCheckChain
		}
	}
	if !r.spawns() {
		rep.Server = cmp.Or(cfg.ServerAddr, cfg.TSAURL)
		rep.ServerPID = cfg.ServerPID
	} else {
		rep.ServerBin = cfg.ServerExe
	}
	for _, flow := range cfg.Flows {
		r.warnLimits(flow)
		res, err := r.runFlow(ctx, flow)
		if err != nil {
			return rep, fmt.Errorf("%s flow: %w", flow, err)
		}
		rep.Flows = append(rep.Flows, res)
		rep.computeRatio()
	}
	return rep, nil
}

// prepareTsnode loads what loading a tsnode server takes: the directory,
// the requesters' keys where a flow speaks libp2p, the trust in the
// server, and the binary to spawn.
func (r *runner) prepareTsnode() error {
	cfg := r.cfg
	if len(cfg.Passphrase) == 0 {
		return errors.New("no passphrase for the private keys")
	}
	if r.spawns() {
		if cfg.ServerExe == "" {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("cannot find the tsnode binary to spawn a server: %w", err)
			}
			cfg.ServerExe = exe
		}
		if err := CheckServerBin(cfg.ServerExe); err != nil {
			return err
		}
	}
	dir, err := identity.LoadDirectory(cfg.Keys)
	if err != nil {
		return err
	}
	if r.server, err = dir.Lookup(cfg.ServerID); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	r.dir = dir
	// Over HTTP, the requesters are HTTP clients: no keys to decrypt.
	if slices.ContainsFunc(cfg.Flows, func(f string) bool { return f != FlowRFC3161 }) {
		if r.reqs, err = loadRequesters(*cfg, dir); err != nil {
			return err
		}
	}
	// The load generator trusts the server it loads, and only it.
	if r.trust, err = protocol.NewTrust(dir, nil, cfg.ServerID); err != nil {
		return err
	}
	r.tsnodeCheck = &tsnodeCheck{trust: r.trust, server: cfg.ServerID, every: cfg.Reverify}
	return nil
}

// spawns reports whether the bench starts a server per flow.
func (r *runner) spawns() bool { return r.cfg.ServerAddr == "" && r.cfg.TSAURL == "" }

// loadRequesters decrypts the requesters' keys, in parallel (PBKDF2 is
// slow on purpose).
func loadRequesters(cfg Config, dir *identity.Directory) ([]*node.Identity, error) {
	out := make([]*node.Identity, len(cfg.IDs))
	errs := make([]error, len(cfg.IDs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, id := range cfg.IDs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := dir.Lookup(id); err != nil {
				errs[i] = fmt.Errorf("requester %d: %w (make it with tsnode keygen --id %s)", i+1, err, id)
				return
			}
			key, err := identity.LoadPrivateKey(identity.PrivateKeyPath(cfg.Keys, id), cfg.Passphrase, nil)
			if err != nil {
				errs[i] = fmt.Errorf("requester %d (%s): %w", i+1, id, err)
				return
			}
			out[i], errs[i] = node.NewIdentity(id, key, dir)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

type runner struct {
	cfg      *Config
	dir      *identity.Directory
	trust    *protocol.Trust
	server   identity.Entry
	reqs     []*node.Identity
	passFile string
	// tsaChain checks TSAURL's tokens (the standard check); tsnodeCheck
	// those of a tsnode server.
	tsaChain    *chainCheck
	tsnodeCheck *tsnodeCheck
	// scheduleEnd, if not nil, is called once the open loop has sent or
	// dropped its last request (for tests).
	scheduleEnd func()
}

// stampFunc stamps hash and returns the checked stamp, or an error.
type stampFunc func(ctx context.Context, hash []byte) (stamped, error)

// stamped is a stamp the protocol client checked.
type stamped struct {
	receipt func() *protocol.Receipt // built only when re-verified; nil for a token
	head    uint64                   // size of its tree head; 0 for v1
	// reverified: a token that also got tsnode's full check.
	reverified bool
}

// runFlow measures one flow against a fresh server (when spawned).
func (r *runner) runFlow(ctx context.Context, flow string) (*FlowResult, error) {
	cfg := r.cfg
	res := &FlowResult{Flow: flow, Requesters: cfg.Requesters}
	if !cfg.Open() {
		res.InFlight = cfg.InFlight
	}
	duration := cfg.Duration
	switch flow {
	case FlowOneShot:
		res.Protocol = protocol.StampProtocolID
		duration = cfg.OneShotDuration
	case FlowSession:
		res.Protocol = protocol.SessionProtocolID
		res.Sessions = cfg.Sessions
	case FlowRFC3161:
		res.Protocol = protocolHTTP
	case FlowRFC3161P2P:
		res.Protocol = protocol.RFC3161ProtocolID
	}
	addr, tsaURL := cfg.ServerAddr, cfg.TSAURL
	var srv *serverProc
	if r.spawns() {
		r.progress("[%s] starting a server", flow)
		var err error
		if srv, err = startServer(ctx, cfg, r.passFile, flow); err != nil {
			return nil, err
		}
		defer srv.stop()
		addr, tsaURL = srv.addr, srv.tsaURL
	}
	cache := protocol.NewHeadCache(1 << 16)
	var stampers []stampFunc
	var closeAll func()
	var err error
	if flow == FlowRFC3161 {
		res.TSAURL = tsaURL
		stampers, closeAll = r.httpTokenStampers(tsaURL)
	} else {
		stampers, closeAll, err = r.libp2pStampers(ctx, flow, addr, cache)
	}
	defer closeAll()
	if err != nil {
		return nil, err
	}

	// The server's CPU time and peak RSS: of the one spawned, or of
	// --server-pid.
	pid := cfg.ServerPID
	if srv != nil {
		pid = srv.pid()
	}
	var cpu0, cpu1, self0, self1 float64
	var cpuErr error
	if pid != 0 {
		cpu0, cpuErr = procCPU(pid)
		if cpuErr != nil && srv == nil {
			return nil, fmt.Errorf("cannot measure the server process %d: %w", pid, cpuErr)
		}
	}
	self0, selfErr := selfCPU()
	t := newTally(cfg, r.trust, cache)
	if cfg.Open() {
		err = r.openLoop(ctx, flow, res, stampers, duration, t)
	} else {
		err = r.closedLoop(ctx, flow, res, stampers, duration, t)
	}
	if err != nil {
		return nil, err
	}
	if srv != nil && !srv.alive() {
		return nil, srv.exitError()
	}
	if pid != 0 {
		if cpuErr == nil {
			if cpu1, cpuErr = procCPU(pid); cpuErr == nil {
				res.ServerCPU = ptr(cpu1 - cpu0)
				if res.Stamps > 0 {
					res.ServerCPUPerStamp = ptr(1e6 * (cpu1 - cpu0) / float64(res.Stamps))
				}
			}
		}
		if cpuErr != nil && srv == nil {
			r.progress("[%s] warning: the server process %d could not be measured: %v", flow, pid, cpuErr)
		}
		if rss, err := procPeakRSS(pid); err == nil {
			res.ServerPeakRSS = ptr(rss)
		}
	}
	if selfErr == nil {
		if self1, selfErr = selfCPU(); selfErr == nil {
			res.BenchCPU = ptr(self1 - self0)
		}
	}
	return res, nil
}

// warnLimits says when a flow asks more of one requester's connection
// than a tsnode server admits (node.MaxStreamsPerPeer streams per peer and
// protocol): it resets the streams over the limit.
func (r *runner) warnLimits(flow string) {
	cfg := r.cfg
	perPeer := func(n int) int { return (n + cfg.Requesters - 1) / cfg.Requesters }
	// One stream per token, as one stamp per stream in the one-shot flow.
	streamPerRequest := flow == FlowOneShot || flow == FlowRFC3161P2P
	switch {
	case cfg.Open() && streamPerRequest:
		r.progress("[%s] note: open loop: the server resets streams beyond about %d unanswered per requester; if it falls behind, those count as errors (use more --requesters)", flow, oneShotStreamsPerPeer)
	case cfg.Open() && flow == FlowSession && perPeer(cfg.Sessions) > node.MaxStreamsPerPeer:
		r.progress("[%s] warning: %d sessions per requester; the server admits %d per peer: use more --requesters", flow, perPeer(cfg.Sessions), node.MaxStreamsPerPeer)
	case cfg.Open():
	case streamPerRequest && perPeer(cfg.InFlight) > oneShotStreamsPerPeer:
		r.progress("[%s] warning: %d streams at once per requester: near or over the server's limit of %d per peer and protocol (counting streams still closing); it resets streams over it: use more --requesters", flow, perPeer(cfg.InFlight), node.MaxStreamsPerPeer)
	case flow == FlowSession && perPeer(cfg.Sessions) > node.MaxStreamsPerPeer:
		r.progress("[%s] warning: %d sessions per requester; the server admits %d per peer: use more --requesters", flow, perPeer(cfg.Sessions), node.MaxStreamsPerPeer)
	}
}

// A stream the server closed still counts against its limit until the
// requester's close arrives, so warn below the limit.
const oneShotStreamsPerPeer = node.MaxStreamsPerPeer * 3 / 4

func (r *runner) progress(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", a...)
	}
}
