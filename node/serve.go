package node

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/node/relay"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/node/tsa"
	"github.com/tsnode/tsnode/node/witness"
	"github.com/tsnode/tsnode/protocol"
)

// Service is a started server or verifier.
type Service struct {
	Host      host.Host
	Authority *authority.Authority // server only
	log       *merklelog.Log
	drainers  []interface{ Drain(context.Context) error }
	stopping  atomic.Bool     // Shutdown or Close called
	key       *rsa.PrivateKey // the server's signing key, for Ready
	keys      *liveKeys       // what ReloadKeys replaces
	dataDir   string          // server only
	gossip    *gossiping      // the witness topics: servers and witnesses
	tsa       *tsa.Service    // server with ServerOptions.TSA only
}

// StartServer starts a timestamp server whose Merkle log lives in
// dataDir: stamp sessions (/tsnode/stamp/2.0.0), one-shot stamps
// (/tsnode/stamp/1.0.0) and the log protocol on a host listening on
// listen. opts tune the authority's batching (authority.WithMaxWait,
// WithMaxBatch). The log is created only in an empty or absent dataDir
// (logstore.Init makes one elsewhere); an existing one must pass
// logstore.Open's checks, and every head signed is saved next to it.
func StartServer(id *Identity, listen []string, dataDir string, opts ...authority.Option) (*Service, error) {
	return StartServerWith(id, listen, dataDir, ServerOptions{Authority: opts})
}

// ServerOptions tune a server.
type ServerOptions struct {
	// Authority tunes the authority's batching (authority.WithMaxWait, ...).
	Authority []authority.Option
	// Metrics, if set, gets the server's metrics, libp2p's and the
	// refusals of its host; Service.Ready then has the server's checks.
	Metrics *metrics.Server
	// CheckpointInterval is how often the latest head is published to
	// the witnesses when the log grew (0: witness.DefaultCheckpointInterval);
	// Heartbeat, how often a fresh head is when it did not (0:
	// witness.Heartbeat).
	CheckpointInterval, Heartbeat time.Duration
	// WitnessMetrics, if set, counts the gossip's refusals.
	WitnessMetrics witness.Metrics
	// TSA, if set, serves RFC 3161 (node/tsa): /tsnode/rfc3161/1.0.0 on
	// the host and, with HTTP, over HTTP; its keys and certificates are
	// made at start where missing or due (tsa.Config.Ensure), and renewed
	// while it runs.
	TSA *TSAOptions
}

// TSAOptions configure the RFC 3161 authority of a server.
type TSAOptions struct {
	KeysDir  string        // the identity directory, where the chain is published
	Key      string        // tsa.KeyECDSA (default) or tsa.KeyIdentity
	Policy   string        // default protocol.DefaultTSAPolicy
	Accuracy time.Duration // the tokens' accuracy: the clock tolerance
	HTTP     net.Listener  // nil: libp2p only; closed with the server
	Lifetime time.Duration // of a signing certificate (0: protocol.TSALeafValidity)
	Metrics  tsa.Metrics   // nil: none
}

// StartServerWith is StartServer with o.
func StartServerWith(id *Identity, listen []string, dataDir string, o ServerOptions) (*Service, error) {
	opts := o.Authority
	var reg *metrics.Registry
	var stampOpts []stamp.Option
	if o.Metrics != nil {
		reg = o.Metrics.Registry
		opts = append(opts[:len(opts):len(opts)], authority.WithMetrics(o.Metrics))
		stampOpts = append(stampOpts, stamp.WithMetrics(o.Metrics))
	}
	self, err := protocol.NewTrust(id.Dir, id.Retired, id.Self.ID)
	if err != nil {
		return nil, err
	}
	lg, saveHead, err := logstore.Open(dataDir, id.Self.ID, self)
	if err != nil {
		return nil, err
	}
	opts = append(opts[:len(opts):len(opts)], authority.WithHeadStore(saveHead))
	signer, err := authority.New(lg, authority.SignerFor(id.Key), id.Self, opts...)
	if err != nil {
		lg.Close()
		return nil, err
	}
	keys := &liveKeys{dir: identity.NewLive(id.Dir), self: id.Self, publicLog: id.PublicLog}
	h, err := newHost(id, access{dir: keys.dir, publicLog: id.PublicLog}, listen, reg, id.listenSecurity()...)
	if err != nil {
		signer.Close()
		lg.Close()
		return nil, err
	}
	fail := func(err error) (*Service, error) {
		h.Close()
		signer.Close()
		lg.Close()
		return nil, err
	}
	stamps, err := stamp.New(h, id.Key, id.Self, keys.dir, signer, stampOpts...)
	if err != nil {
		return fail(err)
	}
	if _, err := logsync.New(h, signer); err != nil {
		return fail(err)
	}
	g, err := witness.NewGossip(h, keys.dir, self, witness.WithMetrics(o.WitnessMetrics))
	if err != nil {
		return fail(err)
	}
	pub, err := witness.NewPublisher(g, id.Self.ID, signer, o.CheckpointInterval, o.Heartbeat)
	if err != nil {
		g.Close()
		return fail(err)
	}
	svc := &Service{Host: h, Authority: signer, log: lg, key: id.Key, drainers: []interface{ Drain(context.Context) error }{stamps}, keys: keys, dataDir: dataDir,
		gossip: &gossiping{gossip: g, publisher: pub}}
	if t := o.TSA; t != nil {
		certs := &tsa.Config{KeysDir: t.KeysDir, DataDir: dataDir, ID: id.Self.ID, Key: id.Key, Mode: t.Key, Lifetime: t.Lifetime}
		k, err := certs.Ensure(time.Now())
		if err != nil {
			g.Close()
			return fail(err)
		}
		to := tsa.Options{Policy: t.Policy, Accuracy: t.Accuracy, Dir: keys.dir, Renew: certs, Metrics: t.Metrics}
		if svc.tsa, err = tsa.New(h, signer, k, to); err != nil {
			g.Close()
			return fail(err)
		}
		if t.HTTP != nil {
			svc.tsa.ServeHTTP(t.HTTP)
		}
		svc.drainers = append(svc.drainers, svc.tsa)
	}
	if reg != nil {
		svc.registerServerGauges(reg)
	}
	return svc, nil
}

// VerifierOptions tune a verifier.
type VerifierOptions struct {
	// Trust decides whose signatures count on relayed receipts. Required.
	Trust     *protocol.Trust
	StoreDir  string
	OnVerdict func(peer.ID, *protocol.Verdict)
	// Metrics, if set, gets the verifier's metrics, libp2p's and the
	// refusals of its host.
	Metrics *metrics.Verifier
	// MaxDocumentSize refuses larger relayed documents; 0 means
	// protocol.DefaultMaxDocumentSize.
	MaxDocumentSize uint64
	// Witnesses, if set, accepts only receipts its witnesses cosigned.
	Witnesses *protocol.WitnessPolicy
}

// StartVerifier starts a verifier: the relay protocol on a host listening
// on listen.
func StartVerifier(id *Identity, listen []string, opts VerifierOptions) (*Service, error) {
	if opts.Trust == nil {
		return nil, errors.New("verifier: no trust policy (VerifierOptions.Trust)")
	}
	var reg *metrics.Registry
	relayOpts := []relay.Option{relay.WithStore(opts.StoreDir), relay.WithVerdictHook(opts.OnVerdict), relay.WithWitnesses(opts.Witnesses)}
	if opts.Metrics != nil {
		reg = opts.Metrics.Registry
		relayOpts = append(relayOpts, relay.WithMetrics(opts.Metrics))
	}
	keys := &liveKeys{dir: identity.NewLive(id.Dir), self: id.Self, trust: opts.Trust}
	h, err := newHost(id, access{dir: keys.dir}, listen, reg, id.listenSecurity()...)
	if err != nil {
		return nil, err
	}
	if opts.MaxDocumentSize > 0 {
		relayOpts = append(relayOpts, relay.WithMaxDocumentSize(opts.MaxDocumentSize))
	}
	relays, err := relay.New(h, id.Key, id.Self, keys.dir, opts.Trust, relayOpts...)
	if err != nil {
		h.Close()
		return nil, err
	}
	keys.relay = relays
	return &Service{Host: h, drainers: []interface{ Drain(context.Context) error }{relays}, keys: keys}, nil
}

// PrintAddrs writes one full multiaddr (with /p2p/) per line.
func (s *Service) PrintAddrs(w io.Writer, role string) {
	for _, a := range FullAddrs(s.Host) {
		fmt.Fprintf(w, "%s listening on %s\n", role, a)
	}
}

// DefaultDrainTimeout bounds how long Shutdown waits for the stamps and
// relays in progress.
const DefaultDrainTimeout = 10 * time.Second

// Run serves until ctx ends, then shuts down, draining for up to drain.
func (s *Service) Run(ctx context.Context, drain time.Duration) error {
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	return s.Shutdown(dctx)
}

// Shutdown stops the service without losing an answer: it takes no new
// stamps or relays (a new session or one-shot request is refused with
// shutting-down; a new relay is reset), lets those in progress finish
// and answer until ctx ends, then closes. Every stamp submitted before
// is answered; a session in progress gets the shutdown notice (§7.7).
// The error says what was still in progress when ctx ended.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	var errs []error
	for _, d := range s.drainers {
		errs = append(errs, d.Drain(ctx))
	}
	errs = append(errs, s.Close())
	return errors.Join(errs...)
}

// Close stops the service at once, without draining: the host first, so no new stamps arrive, then
// the signer (finishing queued stamps) and the log.
func (s *Service) Close() error {
	s.stopping.Store(true)
	s.gossip.close()
	if s.tsa != nil {
		s.tsa.Close()
	}
	err := s.Host.Close()
	if s.Authority != nil {
		s.Authority.Close()
		if cerr := s.log.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// LogSize is how many stamps the server's log holds (0 for a verifier).
func (s *Service) LogSize() uint64 {
	if s.log == nil {
		return 0
	}
	return s.log.Size()
}
