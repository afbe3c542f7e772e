package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	lpswarm "github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/node/relay"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

// Requester gets documents stamped and relays them to a verifier, over one
// connection to each; a dropped connection or session is opened again.
type Requester struct {
	host     host.Host
	id       *Identity
	oneShot  bool
	trust    *protocol.Trust
	stamp    *stamp.OneShotClient
	relay    *relay.Client // nil: stamp only
	server   peer.AddrInfo
	verifier peer.AddrInfo
	outDir   string
	parallel int
	maxTries int
	progress ProgressFunc
	// witnessing, if set, turns each receipt into a witnessed one.
	witnessing *Witnessing

	mu      sync.Mutex // guards session, held while one is opened
	session *stamp.Session
	// closed ends with Close, and with it a session still opening, which
	// holds mu: Close must not wait for a hello that will never come.
	closed     context.Context
	markClosed context.CancelFunc
}

// RequesterConfig says whom a requester talks to.
type RequesterConfig struct {
	ServerID   identity.ID
	ServerAddr string // multiaddr, /p2p/ optional
	// Trust decides whose signatures count; ServerID must be one of its
	// authorities. Required.
	Trust *protocol.Trust
	// The verifier; no VerifierAddr means stamp only: Process writes
	// receipts and relays nothing.
	VerifierID   identity.ID
	VerifierAddr string
	// OutDir receives receipts; empty means next to each document.
	OutDir string
	// Listen addresses; usually none.
	Listen []string
	// OneShot uses the prototype-style flow: one sealed exchange and one
	// server signature per document (v1 receipts) instead of a session.
	OneShot bool
	// Parallel is how many documents ProcessAll keeps in flight; 0 means
	// DefaultParallel.
	Parallel int
	// MaxTries bounds the tries of each step (connecting, stamping,
	// relaying); 0 means as many as the context's deadline allows.
	MaxTries int
	// Progress, if set, follows the hashing and relaying of documents.
	Progress ProgressFunc
	// Witnesses, if set, makes every receipt a witnessed one (v3): K
	// cosignatures of a head at or after the stamp's. Peers are nodes of
	// the witness topics to dial besides the server (multiaddrs with
	// /p2p/); WitnessTolerance is what the witnesses allow between a
	// head's time and their clocks, to explain their silence.
	Witnesses        *protocol.WitnessPolicy
	Peers            []string
	WitnessTolerance time.Duration
}

// DefaultParallel is how many documents a requester stamps and relays at
// once: enough for the server to sign one tree head per group of them.
const DefaultParallel = 8

// NewRequester starts a dial-only host for id. Without ServerAddr it can
// only relay receipts written earlier (Relay).
func NewRequester(id *Identity, cfg RequesterConfig) (*Requester, error) {
	if cfg.Trust == nil {
		return nil, errors.New("requester: no trust policy (RequesterConfig.Trust)")
	}
	// Refuse before anything is stamped: the server's signatures could
	// never be accepted.
	if err := cfg.Trust.CheckAuthority(cfg.ServerID); err != nil {
		return nil, fmt.Errorf("--server-id: %w", err)
	}
	var server identity.Entry
	var serverInfo peer.AddrInfo
	if cfg.ServerAddr != "" {
		var err error
		if server, serverInfo, err = ResolvePeer(id.Dir, cfg.ServerID, cfg.ServerAddr, id.Retired...); err != nil {
			return nil, fmt.Errorf("--server: %w", err)
		}
	}
	var verifier identity.Entry
	var verifierInfo peer.AddrInfo
	if cfg.VerifierAddr != "" {
		var err error
		if verifier, verifierInfo, err = ResolvePeer(id.Dir, cfg.VerifierID, cfg.VerifierAddr, id.Retired...); err != nil {
			return nil, fmt.Errorf("--verifier: %w", err)
		}
	}
	h, err := NewHost(id, cfg.Listen)
	if err != nil {
		return nil, err
	}
	r := &Requester{
		host:     h,
		id:       id,
		oneShot:  cfg.OneShot,
		trust:    cfg.Trust,
		stamp:    &stamp.OneShotClient{Host: h, Key: id.Key, Self: id.Self, Server: server, Trust: cfg.Trust},
		server:   serverInfo,
		verifier: verifierInfo,
		outDir:   cfg.OutDir,
		parallel: cmp.Or(max(cfg.Parallel, 0), DefaultParallel),
		maxTries: max(cfg.MaxTries, 0),
		progress: cfg.Progress,
	}
	r.closed, r.markClosed = context.WithCancel(context.Background())
	if cfg.VerifierAddr != "" {
		r.relay = relay.NewClient(h, id.Self, verifier)
	}
	if cfg.Witnesses != nil {
		if cfg.OneShot || cfg.ServerAddr == "" {
			h.Close()
			return nil, errors.New("witnessed receipts need a stamp session with a server (no --oneshot)")
		}
		peers, err := resolvePeers(id, cfg.Peers)
		if err == nil {
			r.witnessing, err = NewWitnessing(h, id.Dir, cfg.Trust, server, cfg.Witnesses, cfg.WitnessTolerance, peers)
		}
		if err != nil {
			h.Close()
			return nil, err
		}
	}
	return r, nil
}

// Host is the requester's libp2p host.
func (r *Requester) Host() host.Host { return r.host }

// Close ends the session and stops the requester's host. A session
// still opening is abandoned.
func (r *Requester) Close() error {
	r.markClosed()
	if r.witnessing != nil {
		r.witnessing.Close()
	}
	r.mu.Lock()
	if r.session != nil {
		r.session.Close()
	}
	r.mu.Unlock()
	return r.host.Close()
}

// Connect dials the server and the verifier, and opens the stamp session
// the documents share, trying again until ctx ends (or MaxTries): a
// server that is restarting is waited for. Documents reconnect by
// themselves, so Connect only tells early that a peer is unreachable.
func (r *Requester) Connect(ctx context.Context) error {
	_, _, err := retry(ctx, "connecting", r.maxTries, func() (struct{}, error) {
		if r.server.ID != "" {
			if err := r.dialServer(ctx); err != nil {
				return struct{}{}, err
			}
		}
		if err := r.dialVerifier(ctx); err != nil {
			return struct{}{}, err
		}
		if !r.oneShot && r.server.ID != "" {
			if _, err := r.openSession(ctx); err != nil {
				return struct{}{}, sessionRetry(ctx, err)
			}
		}
		return struct{}{}, nil
	})
	return err
}

func (r *Requester) dialServer(ctx context.Context) error {
	if r.server.ID == "" {
		return backoff.Permanent(errors.New("no server given"))
	}
	r.clearDialBackoff(r.server.ID)
	if err := r.host.Connect(ctx, r.server); err != nil {
		return &dialError{fmt.Errorf("cannot reach server %s at %v: %w", r.stamp.Server.ID, r.server.Addrs, ExplainDialError(err, r.stamp.Server.ID))}
	}
	return nil
}

func (r *Requester) dialVerifier(ctx context.Context) error {
	if r.relay == nil {
		return nil
	}
	r.clearDialBackoff(r.verifier.ID)
	if err := r.host.Connect(ctx, r.verifier); err != nil {
		return &dialError{fmt.Errorf("cannot reach verifier %s at %v: %w", r.relay.Verifier.ID, r.verifier.Addrs, ExplainDialError(err, r.relay.Verifier.ID))}
	}
	return nil
}

// clearDialBackoff lets the next dial of p through at once: the
// requester paces its own tries, and libp2p's backoff after a failed
// dial (5 s and more) would turn them into "dial backoff" failures, and
// make a restarted peer wait.
func (r *Requester) clearDialBackoff(p peer.ID) {
	if sw, ok := r.host.Network().(*lpswarm.Swarm); ok && r.host.Network().Connectedness(p) != network.Connected {
		sw.Backoff().Clear(p)
	}
}

// openSession returns the open stamp session, or opens a new one (and
// dials the server first) when there is none or the last one ended.
func (r *Requester) openSession(ctx context.Context) (*stamp.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.session != nil {
		if r.session.Err() == nil {
			return r.session, nil
		}
		r.session.Close()
		r.session = nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.closed, cancel)()
	if err := r.dialServer(ctx); err != nil {
		return nil, err
	}
	s, err := stamp.OpenSession(ctx, r.host, r.id.Key, r.id.Self, r.stamp.Server, r.trust, nil)
	if err != nil {
		return nil, err
	}
	r.session = s
	return s, nil
}

func (r *Requester) receiptBase(doc string) string {
	if r.outDir == "" {
		return doc
	}
	return filepath.Join(r.outDir, filepath.Base(doc))
}

// writeReceipt writes <base>.receipt, or <base>.N.receipt when that
// exists: an earlier receipt is never overwritten.
func writeReceipt(base string, rc *protocol.Receipt) (string, error) {
	path, err := durable.CreateNew(base, ".receipt", rc.Marshal(), 0o644)
	if err != nil {
		return "", fmt.Errorf("cannot write receipt: %w", err)
	}
	return path, nil
}

// sessionRetry marks a failure to open a session as final unless asking
// again may help: a dial or stream failure, or a server shutting down.
func sessionRetry(ctx context.Context, err error) error {
	var dial *dialError
	if ctx.Err() != nil || (!errors.As(err, &dial) && stamp.Classify(err) == stamp.Final) {
		return backoff.Permanent(err)
	}
	return err
}

// dialError is a failure to reach a peer.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
