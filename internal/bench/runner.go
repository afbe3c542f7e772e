package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/stamp"
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
	if len(cfg.Passphrase) == 0 {
		return nil, errors.New("no passphrase for the private keys")
	}
	if cfg.ServerAddr == "" && cfg.ServerExe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("cannot find the tsnode binary to spawn a server: %w", err)
		}
		cfg.ServerExe = exe
	}
	if cfg.ServerAddr == "" {
		if err := CheckServerBin(cfg.ServerExe); err != nil {
			return nil, err
		}
	}
	if cfg.ServerPID != 0 {
		if err := CheckServerPID(cfg.ServerPID); err != nil {
			return nil, err
		}
	}
	dir, err := identity.LoadDirectory(cfg.Keys)
	if err != nil {
		return nil, err
	}
	serverEntry, err := dir.Lookup(cfg.ServerID)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	reqs, err := loadRequesters(cfg, dir)
	if err != nil {
		return nil, err
	}
	// The load generator trusts the server it loads, and only it.
	trust, err := protocol.NewTrust(dir, nil, cfg.ServerID)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: &cfg, dir: dir, trust: trust, server: serverEntry, reqs: reqs}
	if cfg.ServerAddr == "" && cfg.PassphraseFile == "" {
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
	if cfg.ServerAddr != "" {
		rep.Server = cfg.ServerAddr
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
	// scheduleEnd, if not nil, is called once the open loop has sent or
	// dropped its last request (for tests).
	scheduleEnd func()
}

// stampFunc stamps hash and returns the checked stamp, or an error.
type stampFunc func(ctx context.Context, hash []byte) (stamped, error)

// stamped is a stamp the protocol client checked.
type stamped struct {
	receipt func() *protocol.Receipt // built only when re-verified
	head    uint64                   // size of its tree head; 0 for v1
}

// runFlow measures one flow against a fresh server (when spawned).
func (r *runner) runFlow(ctx context.Context, flow string) (*FlowResult, error) {
	cfg := r.cfg
	res := &FlowResult{Flow: flow, Requesters: cfg.Requesters}
	if !cfg.Open() {
		res.InFlight = cfg.InFlight
	}
	duration := cfg.Duration
	if flow == FlowOneShot {
		res.Protocol = protocol.StampProtocolID
		duration = cfg.OneShotDuration
	} else {
		res.Protocol = protocol.SessionProtocolID
		res.Sessions = cfg.Sessions
	}
	addr := cfg.ServerAddr
	var srv *serverProc
	if addr == "" {
		r.progress("[%s] starting a server", flow)
		var err error
		if srv, err = startServer(ctx, cfg, r.passFile); err != nil {
			return nil, err
		}
		defer srv.stop()
		addr = srv.addr
	}
	_, info, err := node.ResolvePeer(r.dir, cfg.ServerID, addr)
	if err != nil {
		return nil, fmt.Errorf("server address: %w", err)
	}

	// One host and one connection per requester.
	hosts := make([]host.Host, len(r.reqs))
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	for i, id := range r.reqs {
		if hosts[i], err = node.NewHost(id, nil); err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, node.DefaultConnectTimeout)
		err := hosts[i].Connect(cctx, info)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cannot reach server %s at %v: %w", cfg.ServerID, info.Addrs, err)
		}
	}

	cache := protocol.NewHeadCache(1 << 16)
	// One stamper per requester (one-shot) or per session: the loops
	// spread their stamps over them.
	var stampers []stampFunc
	if flow == FlowOneShot {
		for i, id := range r.reqs {
			c := &stamp.OneShotClient{Host: hosts[i], Key: id.Key, Self: id.Self, Server: r.server, Trust: r.trust}
			stampers = append(stampers, func(ctx context.Context, hash []byte) (stamped, error) {
				rc, err := c.Stamp(ctx, hash) // checks the reply and its signature
				return stamped{receipt: func() *protocol.Receipt { return rc }}, err
			})
		}
	} else {
		r.progress("[%s] opening %d sessions", flow, cfg.Sessions)
		sessions, err := r.openSessions(ctx, hosts, info, cache)
		defer func() {
			for _, s := range sessions {
				if s != nil {
					s.Close()
				}
			}
		}()
		if err != nil {
			return nil, err
		}
		for _, s := range sessions {
			stampers = append(stampers, func(ctx context.Context, hash []byte) (stamped, error) {
				st, err := s.Stamp(ctx, hash) // checks leaf, proof and tree head signature
				if err != nil {
					return stamped{}, err
				}
				return stamped{receipt: st.Receipt, head: st.Head.Head.Size}, nil
			})
		}
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

// openSessions opens cfg.Sessions sessions, spread over the hosts, a few
// at a time (each costs an RSA decryption on both sides).
func (r *runner) openSessions(ctx context.Context, hosts []host.Host, info peer.AddrInfo, cache *protocol.HeadCache) ([]*stamp.Session, error) {
	n := r.cfg.Sessions
	sessions := make([]*stamp.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4*runtime.NumCPU())
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			j := i % len(hosts)
			id := r.reqs[j]
			sessions[i], errs[i] = stamp.OpenSession(ctx, hosts[j], id.Key, id.Self, r.server, r.trust, cache)
		})
	}
	wg.Wait()
	opened := 0
	for _, s := range sessions {
		if s != nil {
			opened++
		}
	}
	for _, err := range errs {
		if err != nil {
			return sessions, fmt.Errorf("opened %d of %d sessions (%d per requester); the server refused the others: %w", opened, n, (n+len(hosts)-1)/len(hosts), err)
		}
	}
	return sessions, nil
}

// warnLimits says when a flow asks more of one requester's connection
// than a tsnode server admits (node.MaxStreamsPerPeer streams per peer and
// protocol): it resets the streams over the limit.
func (r *runner) warnLimits(flow string) {
	cfg := r.cfg
	perPeer := func(n int) int { return (n + cfg.Requesters - 1) / cfg.Requesters }
	switch {
	case cfg.Open() && flow == FlowOneShot:
		r.progress("[%s] note: open loop: the server resets one-shot streams beyond about %d unanswered per requester; if it falls behind, those count as errors (use more --requesters)", flow, oneShotStreamsPerPeer)
	case cfg.Open() && flow == FlowSession && perPeer(cfg.Sessions) > node.MaxStreamsPerPeer:
		r.progress("[%s] warning: %d sessions per requester; the server admits %d per peer: use more --requesters", flow, perPeer(cfg.Sessions), node.MaxStreamsPerPeer)
	case cfg.Open():
	case flow == FlowOneShot && perPeer(cfg.InFlight) > oneShotStreamsPerPeer:
		r.progress("[%s] warning: %d one-shot streams at once per requester: near or over the server's limit of %d per peer and protocol (counting streams still closing); it resets streams over it: use more --requesters", flow, perPeer(cfg.InFlight), node.MaxStreamsPerPeer)
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
