package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/protocol"
)

// defaultIDs is the prototype's mapping of roles to ids.
var defaultIDs = map[string]identity.ID{
	"server":    identity.ServerID,
	"requester": identity.RequesterID,
	"verifier":  identity.VerifierID,
}

type roleFlags struct {
	role, id, keys, passFile, logLevel string
	listen, files                      stringList
	server, verifier                   string
	serverID, verifierID               string
	out, store, data                   string
	oneShot, init, relayOnly           bool
	parallel                           int
	maxDocument                        byteSize
	timeout, maxWait                   time.Duration
	drainTimeout, clockTolerance       time.Duration
	maxBatch                           int
	trust                              *trustFlag
	security                           string // parsed into listenSecurity
	listenSecurity                     []string
	keyMode                            *keyMode

	logs      *logFlags // --log-level (into logLevel) and --log-format
	metrics   string    // --metrics ADDR
	publicLog bool
	backupDir string
}

// cmdRole runs --role ROLE, or the requester's subcommand sub (stamp,
// relay), which takes the same flags.
func cmdRole(sub string, args []string, stdout, stderr io.Writer) error {
	var f roleFlags
	fs := newFlags(strings.TrimSpace("tsnode "+sub), stderr)
	fs.StringVar(&f.role, "role", "", "server, verifier or requester (required)")
	fs.StringVar(&f.id, "id", "", "this node's id (default: server → server, requester → 1000, verifier → 2000)")
	fs.StringVar(&f.keys, "keys", defaultKeysDir, "keys directory `DIR`: private/<id>.pem and public/*.pem")
	fs.StringVar(&f.passFile, "passphrase-file", "", "read the private key's passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt)")
	fs.Var(&f.listen, "listen", "listen `multiaddr` (repeatable; default TCP and QUIC on port 7400 for the server, 7401 for the verifier, none for the requester)")
	fs.StringVar(&f.server, "server", "", "requester: the server's `multiaddr` (/p2p/ optional)")
	fs.StringVar(&f.verifier, "verifier", "", "requester: the verifier's `multiaddr` (/p2p/ optional)")
	fs.StringVar(&f.serverID, "server-id", string(identity.ServerID), "requester: the server's id in the identity directory")
	fs.StringVar(&f.verifierID, "verifier-id", string(identity.VerifierID), "requester: the verifier's id in the identity directory")
	fs.Var(&f.files, "file", "requester: document to stamp and relay (repeatable)")
	fs.StringVar(&f.out, "out", "", "requester: write receipts into this `DIR` (default: <file>.receipt next to each file)")
	fs.StringVar(&f.data, "data", node.DefaultDataDir, "server: directory `DIR` of the durable Merkle log of issued stamps")
	fs.BoolVar(&f.init, "init", false, "server: create a new, empty log in --data even if the directory is not empty (without it, only into an empty or absent one); never next to a head file")
	fs.BoolVar(&f.oneShot, "oneshot", false, "requester: prototype-style flow, one sealed exchange and one server signature per document (v1 receipts) instead of a stamp session")
	f.maxDocument = protocol.DefaultMaxDocumentSize
	fs.Var(&f.maxDocument, "max-document", "verifier: refuse relayed documents larger than this `size` (bytes, or with KiB, MiB, GiB)")
	fs.StringVar(&f.store, "store", "", "verifier: keep each valid document with its receipt under this `DIR`")
	fs.IntVar(&f.parallel, "parallel", node.DefaultParallel, "requester: how many documents to stamp and relay at once")
	fs.DurationVar(&f.timeout, "timeout", 0, "requester: give up on one document after this `duration`, retries included (default: 2m plus 1s per MiB of the document)")
	fs.DurationVar(&f.maxWait, "max-wait", authority.DefaultMaxWait, "server: the longest a stamp waits for its tree head to start being signed (0: sign as soon as the previous head is signed; longer: fewer signatures, less CPU, more latency)")
	fs.IntVar(&f.maxBatch, "max-batch", authority.DefaultMaxBatch, "server: the most stamps one tree head covers")
	fs.DurationVar(&f.clockTolerance, "clock-tolerance", authority.DefaultClockTolerance, "server: how far a stamp's time may run ahead of the clock; a clock further behind the last issued time pauses stamping (refused as clock-behind) until it catches up")
	fs.DurationVar(&f.drainTimeout, "drain-timeout", node.DefaultDrainTimeout, "server, verifier: on SIGTERM or SIGINT, how long to finish the stamps and relays in progress before stopping (a second signal stops at once)")
	f.logLevel = "info"
	f.logs = addLogFlags(fs, &f.logLevel, true)
	fs.StringVar(&f.metrics, "metrics", "", "server, verifier: serve Prometheus metrics on http://`ADDR`/metrics, and /healthz and /readyz (e.g. 127.0.0.1:9400; off by default)")
	f.trust = addTrustFlag(fs, "verifier, requester: accept only signatures of this authority `ID` (repeatable; default server)")
	fs.StringVar(&f.security, "security", node.SecurityTLS, "server, verifier: security protocols offered, in preference order: tls, or tls,noise (Noise signs with the RSA key on every handshake, even a stranger's; requesters offer both)")
	f.keyMode = addKeyModeFlag(fs, stderr)
	fs.BoolVar(&f.publicLog, "public-log", false, "server: let any peer, in the identity directory or not, read the log (/tsnode/log/1.0.0) and nothing else: auditors need no enrolled key")
	fs.StringVar(&f.backupDir, "backup-dir", "", "server: on SIGUSR1, write a consistent backup of --data into a new folder of this `DIR`")
	req := addRequestFlags(fs, sub)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := req.apply(sub, &f, pos); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if err := f.logs.setup(); err != nil {
		return err
	}
	id, err := loadIdentity(f.keys, identity.ID(f.id), f.passFile, f.keyMode)
	if err != nil {
		return err
	}
	id.ListenSecurity = f.listenSecurity
	id.PublicLog = f.publicLog
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch f.role {
	case "server":
		return runServer(ctx, stop, id, f, stdout)
	case "verifier":
		return runVerifier(ctx, stop, id, f, stdout)
	default:
		return runRequester(ctx, id, f, req, stdout, stderr)
	}
}

func (f *roleFlags) check() (err error) {
	def, ok := defaultIDs[f.role]
	if !ok {
		if f.role == "" {
			return usageErr("give a subcommand (keygen, id, verify) or --role server|verifier|requester")
		}
		return usageErr("--role %q: want server, verifier or requester", f.role)
	}
	if f.id == "" {
		f.id = string(def)
	}
	if _, err := identity.ParseID(f.id); err != nil {
		return usageErr("--id: %v", err)
	}
	isRequester := f.role == "requester"
	if isRequester && (f.server == "" || len(f.files) == 0) && !f.relayOnly {
		return usageErr("--role requester needs --server and at least one --file (and --verifier to relay)")
	}
	if !isRequester && (f.server != "" || f.verifier != "" || len(f.files) > 0 || f.out != "") {
		return usageErr("--server, --verifier, --file and --out are for --role requester")
	}
	if f.store != "" && f.role != "verifier" {
		return usageErr("--store is for --role verifier")
	}
	if f.trust.set && f.role == "server" {
		return usageErr("--trust is for --role verifier and requester")
	}
	if f.metrics != "" && isRequester {
		return usageErr("--metrics is for --role server and verifier")
	}
	if f.init && f.role != "server" {
		return usageErr("--init is for --role server")
	}
	if (f.publicLog || f.backupDir != "") && f.role != "server" {
		return usageErr("--public-log and --backup-dir are for --role server")
	}
	if f.oneShot && !isRequester {
		return usageErr("--oneshot is for --role requester")
	}
	if f.listenSecurity, err = node.ParseSecurity(f.security); err != nil {
		return usageErr("--security: %v", err)
	}
	if isRequester && f.security != node.SecurityTLS {
		return usageErr("--security is for --role server and verifier (a requester offers TLS, then Noise)")
	}
	if f.maxWait < 0 || f.maxWait > time.Second {
		return usageErr("--max-wait %v: want 0 to 1s", f.maxWait)
	}
	if f.clockTolerance < 0 || f.clockTolerance > time.Hour {
		return usageErr("--clock-tolerance %v: want 0 to 1h", f.clockTolerance)
	}
	if f.drainTimeout < 0 {
		return usageErr("--drain-timeout %v: want 0 or more", f.drainTimeout)
	}
	if f.maxBatch < 1 || f.maxBatch > authority.DefaultMaxBatch {
		return usageErr("--max-batch %d: want 1 to %d", f.maxBatch, authority.DefaultMaxBatch)
	}
	if f.parallel < 1 || f.parallel > 256 {
		return usageErr("--parallel %d: want 1 to 256", f.parallel)
	}
	for _, s := range []struct{ flag, v string }{{"--server-id", f.serverID}, {"--verifier-id", f.verifierID}} {
		if _, err := identity.ParseID(s.v); err != nil {
			return usageErr("%s: %v", s.flag, err)
		}
	}
	return nil
}

// loadIdentity loads the directory, its retired keys and this node's own
// private key, and nothing else private.
func loadIdentity(keys string, id identity.ID, passFile string, mode *keyMode) (*node.Identity, error) {
	dir, err := identity.LoadDirectory(keys)
	if err != nil {
		return nil, err
	}
	retired, err := protocol.LoadRetiredKeys(keys, dir)
	if err != nil {
		return nil, err
	}
	pass, err := readPassphrase(passFile, false, mode)
	if err != nil {
		return nil, err
	}
	key, err := identity.LoadPrivateKey(identity.PrivateKeyPath(keys, id), pass, mode.allowInsecure())
	if err != nil {
		return nil, mode.explain(err)
	}
	nid, err := node.NewIdentity(id, key, dir)
	if err != nil {
		return nil, err
	}
	nid.Retired = retired
	return nid, nil
}

func listenOr(listen []string, port int) []string {
	if len(listen) > 0 {
		return listen
	}
	return node.DefaultListenAddrs(port)
}

func runServer(ctx context.Context, stop func(), id *node.Identity, f roleFlags, stdout io.Writer) error {
	m, err := listenMetrics(f.metrics)
	if err != nil {
		return err
	}
	defer m.close()
	if f.init {
		if err := logstore.Init(f.data); err != nil {
			return err
		}
	}
	ops := opsSignals(true)
	o := node.ServerOptions{Authority: []authority.Option{
		authority.WithMaxWait(f.maxWait), authority.WithMaxBatch(f.maxBatch), authority.WithClockTolerance(f.clockTolerance)}}
	if f.metrics != "" {
		o.Metrics = metrics.NewServer(metrics.New())
	}
	svc, err := node.StartServerWith(id, listenOr(f.listen, node.DefaultServerPort), f.data, o)
	if err != nil {
		return err
	}
	go serveOps(ctx, ops, svc, f)
	fmt.Fprintf(stdout, "server %s (peer %s) ready, log %s holds %d stamps\n", id.Self.ID, id.Self.PeerID, f.data, svc.LogSize())
	if o.Metrics != nil {
		m.serve(o.Metrics.Registry, svc, "server", stdout)
	}
	svc.PrintAddrs(stdout, "server")
	return serveUntilSignal(ctx, stop, svc, "server", f.drainTimeout, stdout)
}

// serveUntilSignal serves until the first SIGTERM or SIGINT, then drains
// for up to drain; a second signal stops the process at once.
func serveUntilSignal(ctx context.Context, stop func(), svc *node.Service, role string, drain time.Duration, stdout io.Writer) error {
	<-ctx.Done()
	stop()
	fmt.Fprintf(stdout, "%s draining: finishing what is in progress (up to %v; signal again to stop at once)\n", role, drain)
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := svc.Shutdown(dctx); err != nil {
		return fmt.Errorf("%s stopped before everything in progress was answered: %w", role, err)
	}
	fmt.Fprintf(stdout, "%s stopped\n", role)
	return nil
}

func runVerifier(ctx context.Context, stop func(), id *node.Identity, f roleFlags, stdout io.Writer) error {
	// Each verdict is logged by the relay handler.
	trust, err := f.trust.policy(id.Dir, id.Retired)
	if err != nil {
		return err
	}
	m, err := listenMetrics(f.metrics)
	if err != nil {
		return err
	}
	defer m.close()
	ops := opsSignals(false)
	vo := node.VerifierOptions{Trust: trust, StoreDir: f.store, MaxDocumentSize: uint64(f.maxDocument)}
	if f.metrics != "" {
		vo.Metrics = metrics.NewVerifier(metrics.New())
	}
	svc, err := node.StartVerifier(id, listenOr(f.listen, node.DefaultVerifierPort), vo)
	if err != nil {
		return err
	}
	go serveOps(ctx, ops, svc, f)
	fmt.Fprintf(stdout, "verifier %s (peer %s) ready\n", id.Self.ID, id.Self.PeerID)
	if vo.Metrics != nil {
		m.serve(vo.Metrics.Registry, svc, "verifier", stdout)
	}
	svc.PrintAddrs(stdout, "verifier")
	return serveUntilSignal(ctx, stop, svc, "verifier", f.drainTimeout, stdout)
}

// byteSize is a flag holding a size in bytes, written as a number with an
// optional KiB, MiB or GiB suffix.
type byteSize uint64

// String writes the size with the largest unit that divides it: 4GiB.
func (b *byteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if *b != 0 && uint64(*b)%u.mult == 0 {
			return strconv.FormatUint(uint64(*b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(uint64(*b), 10)
}

func (b *byteSize) Set(v string) error {
	num, mult := v, uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 || n > math.MaxUint64/mult {
		return fmt.Errorf("want a positive size such as 1048576, 512MiB or 4GiB")
	}
	*b = byteSize(n * mult)
	return nil
}
