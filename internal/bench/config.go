// Package bench is the load generator behind `tsnode bench`: it starts a
// tsnode server as its own process (or targets a running one), drives it
// from several requester hosts, checks every stamp it gets back, and
// reports throughput, latency and the server's CPU time and peak memory
// for the prototype-style one-shot flow and for the default session flow,
// and for RFC 3161 tokens over HTTP and over libp2p (rfc3161.go), also
// from an RFC 3161 server that is not tsnode (Config.TSAURL).
//
// It drives the server in one of two ways. The closed loop (the default)
// keeps a fixed number of stamps in flight: it measures latency at that
// concurrency. The open loop (Config.Rate) sends requests on a schedule,
// whether or not the earlier ones were answered, and measures each
// latency from the request's scheduled time: it measures what a given
// offered load costs the server, and where it stops keeping up.
package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/protocol"
)

// The flows a run can measure.
const (
	// FlowOneShot is the prototype-style flow: /tsnode/stamp/1.0.0, one
	// sealed exchange and one server signature per stamp, v1 receipts.
	FlowOneShot = "oneshot"
	// FlowSession is the default flow: /tsnode/stamp/2.0.0 sessions,
	// one tree-head signature per batch, v2 receipts.
	FlowSession = "session"
	// FlowRFC3161 asks for RFC 3161 tokens over HTTP (PROTOCOL.md §14.4):
	// from the spawned server's --http address, or from Config.TSAURL.
	FlowRFC3161 = "rfc3161"
	// FlowRFC3161P2P asks for RFC 3161 tokens over /tsnode/rfc3161/1.0.0.
	FlowRFC3161P2P = "rfc3161-p2p"
)

// tokenFlow reports whether flow measures RFC 3161 tokens, not stamps.
func tokenFlow(flow string) bool { return flow == FlowRFC3161 || flow == FlowRFC3161P2P }

// unit is what flow counts: "tokens" or "stamps".
func unit(flow string) string {
	if tokenFlow(flow) {
		return "tokens"
	}
	return "stamps"
}

// flows are the flows Check accepts, in the order of its message.
var flows = []string{FlowOneShot, FlowSession, FlowRFC3161, FlowRFC3161P2P}

// Bounds of a run.
const (
	MaxDuration   = time.Hour
	MaxInFlight   = 100_000
	MaxRequesters = 256
	MaxSessions   = 10_000
	// MaxRate bounds the open loop's offered rate, in stamps per second.
	MaxRate = 1_000_000
	// MaxOutstandingCap bounds Config.MaxOutstanding.
	MaxOutstandingCap = 1_000_000
)

// The open loop's schedules.
const (
	// SchedulePoisson spaces requests by exponential gaps: a Poisson
	// process, as independent clients would.
	SchedulePoisson = "poisson"
	// ScheduleFixed spaces requests evenly, 1/rate apart.
	ScheduleFixed = "fixed"
)

// DefaultMaxOutstanding bounds the open loop's unanswered requests.
const DefaultMaxOutstanding = 50_000

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
	// ServerPID, with ServerAddr or TSAURL, is the pid of that server's
	// process on this machine: its CPU time and peak RSS are then
	// measured from /proc (Linux only).
	ServerPID int

	// TSAURL targets an RFC 3161 server over HTTP that need not be
	// tsnode (only the rfc3161 flow; no keys needed): its tokens get the
	// standard check (CMS signature, X.509 chain to the root of
	// TSAChain), not tsnode's trust rule. TSAChain is a PEM file of the
	// signing certificate's chain, root last; empty: the chain served at
	// the URL's /api/v1/timestamp/certchain.
	TSAURL   string
	TSAChain string

	// IDs are the requesters' ids, one per requester host (default 1000,
	// 1001, ...). Each needs its own key: one id is one peer ID. The
	// rfc3161 flow's requesters are HTTP clients (one connection pool
	// each) and need no key.
	IDs        []identity.ID
	Requesters int
	// Sessions is the number of stamp sessions of the session flow,
	// spread over the requesters (default: 4 per requester, at most one
	// per stamp in flight, and enough that none has more than
	// protocol.MaxInFlight stamps in flight).
	Sessions int
	// InFlight is the number of stamps outstanding at any time, in total,
	// in the closed loop.
	InFlight int

	// Rate, if more than 0, runs the open loop instead: Rate requests
	// per second in total, spread over the sessions (session flow) or
	// the requesters (one-shot flow), on Schedule (default
	// SchedulePoisson, from Seed). A request is never held back for an
	// earlier one; one scheduled while MaxOutstanding requests are
	// unanswered (default DefaultMaxOutstanding) is dropped and counted.
	Rate           float64
	Schedule       string
	Seed           uint64
	MaxOutstanding int

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
		cfg.Keys = node.DefaultKeysDir
	}
	if cfg.ServerID == "" {
		cfg.ServerID = identity.ServerID
	}
	if cfg.Listen == "" {
		cfg.Listen = node.LoopbackListen
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
	if cfg.Rate > 0 && cfg.Schedule == "" {
		cfg.Schedule = SchedulePoisson
	}
	if cfg.Rate > 0 && cfg.MaxOutstanding == 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.OneShotDuration == 0 {
		cfg.OneShotDuration = cfg.Duration
	}
	if len(cfg.Flows) == 0 && cfg.TSAURL != "" {
		cfg.Flows = []string{FlowRFC3161} // the only flow such a server speaks
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

// Open reports whether cfg runs the open loop.
func (cfg *Config) Open() bool { return cfg.Rate > 0 }

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
	case cfg.Rate < 0 || cfg.Rate > MaxRate || math.IsNaN(cfg.Rate):
		return fmt.Errorf("rate %g: want more than 0 and at most %d stamps per second (0: the closed loop)", cfg.Rate, MaxRate)
	case cfg.Rate == 0 && (cfg.Schedule != "" || cfg.MaxOutstanding != 0 || cfg.Seed != 0):
		return errors.New("a schedule, seed or max outstanding is for the open loop: give a rate")
	case cfg.Rate > 0 && cfg.Schedule != SchedulePoisson && cfg.Schedule != ScheduleFixed:
		return fmt.Errorf("schedule %q: want %s or %s", cfg.Schedule, SchedulePoisson, ScheduleFixed)
	case cfg.Rate > 0 && (cfg.MaxOutstanding < 1 || cfg.MaxOutstanding > MaxOutstandingCap):
		return fmt.Errorf("max outstanding %d: want 1 to %d", cfg.MaxOutstanding, MaxOutstandingCap)
	case cfg.ServerPID < 0:
		return fmt.Errorf("server pid %d: want a process id", cfg.ServerPID)
	case cfg.ServerPID != 0 && cfg.ServerAddr == "" && cfg.TSAURL == "":
		return errors.New("a server pid is for a server given by address: the bench measures the servers it spawns anyway")
	case cfg.TSAURL != "" && cfg.ServerAddr != "":
		return errors.New("a TSA URL and a server address: give one target")
	case cfg.TSAChain != "" && cfg.TSAURL == "":
		return errors.New("a TSA chain is for a TSA URL: a tsnode server's tokens are checked against its identity key")
	case cfg.Reverify < -1:
		return fmt.Errorf("reverify %d: want -1 (none), 1 (all) or N (every Nth)", cfg.Reverify)
	case cfg.MaxErrors < 0:
		return fmt.Errorf("max errors %d: want 0 or more", cfg.MaxErrors)
	case cfg.StampTimeout <= 0:
		return errors.New("stamp timeout must be positive")
	}
	if err := cfg.checkTSAURL(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, f := range cfg.Flows {
		if !slices.Contains(flows, f) {
			return fmt.Errorf("flow %q: want %s", f, strings.Join(flows, ", "))
		}
		switch {
		case cfg.TSAURL != "" && f != FlowRFC3161:
			return fmt.Errorf("flow %s with a TSA URL: that server is asked over HTTP only, give the flow %s", f, FlowRFC3161)
		case f == FlowRFC3161 && cfg.ServerAddr != "":
			return fmt.Errorf("flow %s with a server address: give the running server's HTTP address as the TSA URL instead (its multiaddr is for %s)", f, FlowRFC3161P2P)
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

// checkTSAURL refuses a TSA URL that is not an absolute http(s) URL.
func (cfg *Config) checkTSAURL() error {
	if cfg.TSAURL == "" {
		return nil
	}
	u, err := url.Parse(cfg.TSAURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("TSA URL %q: want an http or https URL with a host, e.g. http://127.0.0.1:3000/api/v1/timestamp", cfg.TSAURL)
	}
	return nil
}
