// Package bench is the load generator behind `tsnode bench`: it starts a
// tsnode server as its own process (or targets a running one), drives it
// from several requester hosts with a fixed number of stamps in flight,
// checks every stamp it gets back, and reports throughput, latency and
// the server's CPU time and peak memory for the prototype-style one-shot
// flow and for the default session flow.
package bench

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"tsnode/identity"
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
