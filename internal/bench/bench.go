// Package bench is the load generator behind `tsnode bench`: it starts a
// tsnode server as its own process (or targets a running one), drives it
// from several requester hosts with a fixed number of stamps in flight,
// checks every stamp it gets back, and reports throughput, latency and
// the server's CPU time and peak memory for the prototype-style one-shot
// flow and for the default session flow.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
	"tsnode/node"
	"tsnode/node/stamp"
	"tsnode/protocol"
)

// The flows a run can measure.
const (
	// FlowOneShot is the prototype-style flow: /tsnode/stamp/1.0.0, one
	// sealed exchange and one server signature per stamp, v1 receipts.
	FlowOneShot = "oneshot"
	// FlowSession is the default flow: /tsnode/stamp/2.0.0 sessions,
	// one tree-head signature per batch, v2 receipts.
	FlowSession = "session"
)

// Bounds of a run.
const (
	MaxDuration   = time.Hour
	MaxInFlight   = 100_000
	MaxRequesters = 256
	MaxSessions   = 10_000
)

// DefaultReverify samples one stamp in 16 for the second, offline check:
// building and re-checking a v2 receipt costs the load generator about
// 30 µs per stamp, a third of what the server spends on it, on the same
// cores.
const DefaultReverify = 16

// Config says what to run. Zero fields take the defaults of Defaults.
type Config struct {
	// Keys is the keys directory: public/*.pem for every party, and
	// private/<id>.pem of each requester id (and of the server when the
	// bench spawns it).
	Keys string
	// Passphrase decrypts the requesters' private keys and the spawned
	// server's.
	Passphrase []byte
	// PassphraseFile, if set, is handed to the spawned server; otherwise
	// the bench writes Passphrase to a private temporary file for it.
	PassphraseFile string

	// ServerID is the server's id in the directory.
	ServerID identity.ID
	// ServerAddr targets a running server; empty spawns one per flow.
	ServerAddr string
	// ServerExe is the tsnode binary to spawn (default: this executable);
	// ServerArgs go before its --role server flags, ServerEnv is added to
	// its environment.
	ServerExe  string
	ServerArgs []string
	ServerEnv  []string
	// Listen is the spawned server's listen multiaddr.
	Listen string

	// IDs are the requesters' ids, one per requester host (default 1000,
	// 1001, ...). Each needs its own key: one id is one peer ID.
	IDs        []identity.ID
	Requesters int
	// Sessions is the number of stamp sessions of the session flow,
	// spread over the requesters (default: 4 per requester, at most one
	// per stamp in flight, and enough that none has more than
	// protocol.MaxInFlight stamps in flight).
	Sessions int
	// InFlight is the number of stamps outstanding at any time, in total.
	InFlight int

	// Duration bounds each flow; OneShotDuration, if set, bounds the
	// one-shot flow instead. Count, if not 0, stops a flow after that
	// many stamps. Whichever comes first ends the flow.
	Duration        time.Duration
	OneShotDuration time.Duration
	Count           int
	Flows           []string

	// Reverify re-verifies every Reverify-th stamp as a receipt through
	// protocol.Receipt.VerifyCached (1: all, -1: none, 0: the default,
	// DefaultReverify). Every stamp is checked by the protocol client
	// anyway: reply, signature, inclusion proof.
	Reverify int
	// MaxErrors ends a flow once more stamps than this failed.
	MaxErrors int
	// StampTimeout bounds one stamp.
	StampTimeout time.Duration

	// Progress, if not nil, receives a progress line every second.
	Progress io.Writer
}

// Defaults fills in the zero fields of cfg.
func (cfg *Config) Defaults() {
	if cfg.Keys == "" {
		cfg.Keys = "./keys"
	}
	if cfg.ServerID == "" {
		cfg.ServerID = identity.ServerID
	}
	if cfg.Listen == "" {
		cfg.Listen = "/ip4/127.0.0.1/tcp/0"
	}
	if cfg.Requesters == 0 {
		cfg.Requesters = max(len(cfg.IDs), 1)
	}
	if len(cfg.IDs) == 0 && cfg.Requesters > 0 && cfg.Requesters <= MaxRequesters {
		for i := range cfg.Requesters {
			cfg.IDs = append(cfg.IDs, identity.ID(strconv.Itoa(1000+i)))
		}
	}
	if cfg.InFlight == 0 {
		cfg.InFlight = 256
	}
	if cfg.Sessions == 0 && cfg.Requesters > 0 && cfg.InFlight > 0 {
		cfg.Sessions = max(min(4*cfg.Requesters, cfg.InFlight), cfg.Requesters,
			(cfg.InFlight+protocol.MaxInFlight-1)/protocol.MaxInFlight)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.OneShotDuration == 0 {
		cfg.OneShotDuration = cfg.Duration
	}
	if len(cfg.Flows) == 0 {
		cfg.Flows = []string{FlowOneShot, FlowSession}
	}
	if cfg.Reverify == 0 {
		cfg.Reverify = DefaultReverify
	}
	if cfg.MaxErrors == 0 {
		cfg.MaxErrors = 100
	}
	if cfg.StampTimeout == 0 {
		cfg.StampTimeout = 30 * time.Second
	}
}

// Check refuses a configuration that cannot run or is unbounded.
func (cfg *Config) Check() error {
	switch {
	case cfg.Duration <= 0 || cfg.Duration > MaxDuration:
		return fmt.Errorf("duration %s: want more than 0 and at most %s", cfg.Duration, MaxDuration)
	case cfg.OneShotDuration <= 0 || cfg.OneShotDuration > MaxDuration:
		return fmt.Errorf("one-shot duration %s: want more than 0 and at most %s", cfg.OneShotDuration, MaxDuration)
	case cfg.Count < 0:
		return fmt.Errorf("count %d: want 0 (no limit) or more", cfg.Count)
	case cfg.InFlight < 1 || cfg.InFlight > MaxInFlight:
		return fmt.Errorf("in flight %d: want 1 to %d", cfg.InFlight, MaxInFlight)
	case cfg.Requesters < 1 || cfg.Requesters > MaxRequesters:
		return fmt.Errorf("requesters %d: want 1 to %d", cfg.Requesters, MaxRequesters)
	case len(cfg.IDs) != cfg.Requesters:
		return fmt.Errorf("%d requester ids for %d requesters: give one id per requester", len(cfg.IDs), cfg.Requesters)
	case cfg.Sessions < cfg.Requesters || cfg.Sessions > MaxSessions:
		return fmt.Errorf("sessions %d: want at least one per requester (%d) and at most %d", cfg.Sessions, cfg.Requesters, MaxSessions)
	case (cfg.InFlight+cfg.Sessions-1)/cfg.Sessions > protocol.MaxInFlight:
		return fmt.Errorf("%d in flight over %d sessions exceeds %d per session", cfg.InFlight, cfg.Sessions, protocol.MaxInFlight)
	case cfg.Reverify < -1:
		return fmt.Errorf("reverify %d: want -1 (none), 1 (all) or N (every Nth)", cfg.Reverify)
	case cfg.MaxErrors < 0:
		return fmt.Errorf("max errors %d: want 0 or more", cfg.MaxErrors)
	case cfg.StampTimeout <= 0:
		return errors.New("stamp timeout must be positive")
	}
	seen := map[string]bool{}
	for _, f := range cfg.Flows {
		if f != FlowOneShot && f != FlowSession {
			return fmt.Errorf("flow %q: want %s or %s", f, FlowOneShot, FlowSession)
		}
		if seen[f] {
			return fmt.Errorf("flow %q given twice", f)
		}
		seen[f] = true
	}
	ids := map[identity.ID]bool{}
	for _, id := range cfg.IDs {
		if _, err := identity.ParseID(string(id)); err != nil {
			return err
		}
		if ids[id] {
			return fmt.Errorf("requester id %s given twice: each requester host needs its own id", id)
		}
		if id == cfg.ServerID {
			return fmt.Errorf("requester id %s is the server's id", id)
		}
		ids[id] = true
	}
	return nil
}

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
		Count: cfg.Count, ReverifyEvery: cfg.Reverify,
	}
	if cfg.ServerAddr != "" {
		rep.Server = cfg.ServerAddr
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
	res := &FlowResult{Flow: flow, Requesters: cfg.Requesters, InFlight: cfg.InFlight}
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
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := hosts[i].Connect(cctx, info)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cannot reach server %s at %v: %w", cfg.ServerID, info.Addrs, err)
		}
	}

	cache := protocol.NewHeadCache(1 << 16)
	var workers []stampFunc
	if flow == FlowOneShot {
		clients := make([]*stamp.OneShotClient, len(r.reqs))
		for i, id := range r.reqs {
			clients[i] = &stamp.OneShotClient{Host: hosts[i], Key: id.Key, Self: id.Self, Server: r.server, Trust: r.trust}
		}
		for w := range cfg.InFlight {
			c := clients[w%len(clients)]
			workers = append(workers, func(ctx context.Context, hash []byte) (stamped, error) {
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
		for w := range cfg.InFlight {
			s := sessions[w%len(sessions)]
			workers = append(workers, func(ctx context.Context, hash []byte) (stamped, error) {
				st, err := s.Stamp(ctx, hash) // checks leaf, proof and tree head signature
				if err != nil {
					return stamped{}, err
				}
				return stamped{receipt: st.Receipt, head: st.Head.Head.Size}, nil
			})
		}
	}

	var cpu0, cpu1, self0, self1 float64
	var cpuErr error
	if srv != nil {
		cpu0, cpuErr = procCPU(srv.pid())
	}
	self0, selfErr := selfCPU()
	if err := r.drive(ctx, flow, res, workers, duration, cache); err != nil {
		return nil, err
	}
	if srv != nil {
		if !srv.alive() {
			return nil, srv.exitError()
		}
		if cpuErr == nil {
			if cpu1, cpuErr = procCPU(srv.pid()); cpuErr == nil {
				res.ServerCPU = ptr(cpu1 - cpu0)
			}
		}
		if rss, err := procPeakRSS(srv.pid()); err == nil {
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

// drive runs the workers until the duration or the count is reached, the
// error budget is spent, or ctx ends, and fills in res.
func (r *runner) drive(ctx context.Context, flow string, res *FlowResult, workers []stampFunc, duration time.Duration, cache *protocol.HeadCache) error {
	cfg := r.cfg
	var (
		issued, ok, reverified, failed atomic.Uint64
		firstErr                       atomic.Pointer[string]
		stopOnce                       sync.Once
		stop                           = make(chan struct{})
	)
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	record := func(err error) {
		s := err.Error()
		firstErr.CompareAndSwap(nil, &s)
		if failed.Add(1) > uint64(cfg.MaxErrors) {
			halt()
		}
	}

	lat := make([][]time.Duration, len(workers))
	heads := make([]map[uint64]struct{}, len(workers))
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.AfterFunc(duration, halt)
	defer timer.Stop()
	go func() {
		select {
		case <-ctx.Done():
			halt()
		case <-stop:
		}
	}()
	for w, stamp := range workers {
		var seed [32]byte
		_, _ = rand.Read(seed[:])
		wg.Go(func() {
			rng := mrand.NewChaCha8(seed)
			hash := make([]byte, protocol.HashSize)
			mine := make([]time.Duration, 0, 1024)
			myHeads := map[uint64]struct{}{}
			for !stopped() {
				if n := issued.Add(1); cfg.Count > 0 && n > uint64(cfg.Count) {
					halt()
					break
				}
				_, _ = rng.Read(hash)
				sctx, cancel := context.WithTimeout(ctx, cfg.StampTimeout)
				t0 := time.Now()
				st, err := stamp(sctx, hash)
				d := time.Since(t0)
				cancel()
				if err != nil {
					record(err)
					continue
				}
				n := ok.Add(1)
				mine = append(mine, d)
				if st.head != 0 {
					myHeads[st.head] = struct{}{}
				}
				if cfg.Reverify > 0 && n%uint64(cfg.Reverify) == 0 {
					if _, err := st.receipt().VerifyCached(r.trust, hash, cache); err != nil {
						record(fmt.Errorf("receipt does not verify: %w", err))
						continue
					}
					reverified.Add(1)
				}
			}
			lat[w], heads[w] = mine, myHeads
		})
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastT := uint64(0), start
loop:
	for {
		select {
		case <-done:
			break loop
		case now := <-tick.C:
			n := ok.Load()
			rate := float64(n-last) / now.Sub(lastT).Seconds()
			last, lastT = n, now
			r.progress("[%s] %5.1fs  %d stamps  %.0f/s  %d errors", flow, now.Sub(start).Seconds(), n, rate, failed.Load())
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}

	all := make([]time.Duration, 0, ok.Load())
	for _, l := range lat {
		all = append(all, l...)
	}
	distinct := map[uint64]struct{}{}
	for _, h := range heads {
		for size := range h {
			distinct[size] = struct{}{}
		}
	}
	if len(distinct) > 0 {
		res.TreeHeads = uint64(len(distinct))
		res.StampsPerHead = float64(ok.Load()) / float64(len(distinct))
	}
	res.Stamps = ok.Load()
	res.Reverified = reverified.Load()
	res.Errors = failed.Load()
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(res.Stamps) / elapsed.Seconds()
	res.Latency = Summarize(all)
	r.progress("[%s] done: %d stamps in %.1fs, %.0f/s, %d errors", flow, res.Stamps, res.Seconds, res.PerSecond, res.Errors)
	return nil
}

// warnLimits says when a flow asks more of one requester's connection
// than a tsnode server admits (node.MaxStreamsPerPeer streams per peer and
// protocol): it resets the streams over the limit.
func (r *runner) warnLimits(flow string) {
	cfg := r.cfg
	perPeer := func(n int) int { return (n + cfg.Requesters - 1) / cfg.Requesters }
	switch {
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

// ParseFlows splits a comma-separated list of flows.
func ParseFlows(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
