package main

import (
	"cmp"
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
	"witness":   witnessID,
}

// roleFlags hold the values of every role's flags; each role registers
// the ones it takes (flags.go).
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
	onlineKeyLifetime                  time.Duration
	trust                              *trustFlag // nil for a server
	security                           string     // parsed into listenSecurity
	listenSecurity                     []string
	keyMode                            *keyMode

	logs      *logFlags // --log-level (into logLevel) and --log-format
	metrics   string    // --metrics ADDR
	publicLog bool
	backupDir string
	req       *requestFlags
	wit       *witnessFlags // witnessing and required cosignatures
	tsa       *tsaFlags     // the server's RFC 3161 flags (tsa.go)
	stderr    io.Writer     // the key mode's warnings
}

// cmdRole runs --role ROLE, or the requester's subcommand sub (stamp,
// relay).
func cmdRole(sub string, args []string, stdout, stderr io.Writer) error {
	f, err := parseRole(sub, args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := f.logs.setup(); err != nil {
		return err
	}
	if f.req.tsaURL != "" { // HTTP needs no identity of ours
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runStampRFC3161HTTP(ctx, f, stdout, stderr)
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
		return runServer(ctx, stop, id, *f, stdout)
	case "verifier":
		return runVerifier(ctx, stop, id, *f, stdout)
	case "witness":
		return runWitness(ctx, stop, id, *f, stdout)
	default:
		// The first signal cancels what is in progress and the results
		// print; a second one ends the process at once, by default.
		context.AfterFunc(ctx, stop)
		if f.req.rfc3161 {
			return runStampRFC3161(ctx, id, f, stdout, stderr)
		}
		return runRequester(ctx, id, *f, f.req, stdout, stderr)
	}
}

// parseRole parses and checks the flags of sub, or of the role that
// args name; it starts nothing.
func parseRole(sub string, args []string, stdout, stderr io.Writer) (*roleFlags, error) {
	c, err := findRoleCommand(sub, args)
	if err != nil {
		return nil, err
	}
	f := &roleFlags{stderr: stderr}
	pos, err := c.parseRoleArgs(f, args, stdout)
	if err != nil {
		return nil, err
	}
	if err := f.req.apply(sub, f, pos); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return f, nil
}

// check checks the values; which flags a role takes, its flag set does.
func (f *roleFlags) check() (err error) {
	if f.id == "" {
		f.id = string(defaultIDs[f.role])
	}
	if _, err := identity.ParseID(f.id); err != nil {
		return usageErr("--id: %v", err)
	}
	if f.role == "requester" && (f.server == "" || len(f.files) == 0) && !f.relayOnly && f.req.tsaURL == "" {
		return usageErr("--role requester needs --server and at least one --file (and --verifier to relay)")
	}
	// A requester has no --security: it offers TLS, then Noise.
	if f.listenSecurity, err = node.ParseSecurity(cmp.Or(f.security, node.SecurityTLS)); err != nil {
		return usageErr("--security: %v", err)
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
	if f.role == "server" && (f.maxBatch < 1 || f.maxBatch > authority.DefaultMaxBatch) {
		return usageErr("--max-batch %d: want 1 to %d", f.maxBatch, authority.DefaultMaxBatch)
	}
	if f.role == "server" && (f.onlineKeyLifetime < 0 || f.onlineKeyLifetime > authority.MaxOnlineKeyLifetime || (f.onlineKeyLifetime > 0 && f.onlineKeyLifetime < time.Minute)) {
		return usageErr("--online-key-lifetime %s: want 0 (off) or 1m to %s", f.onlineKeyLifetime, authority.MaxOnlineKeyLifetime)
	}
	if f.role == "requester" && !f.relayOnly && (f.parallel < 1 || f.parallel > 256) {
		return usageErr("--parallel %d: want 1 to 256", f.parallel)
	}
	if err := f.wit.check(f.role); err != nil {
		return err
	}
	if err := f.tsa.check(); err != nil {
		return err
	}
	for _, s := range []struct{ flag, v string }{{"--server-id", f.serverID}, {"--verifier-id", f.verifierID}} {
		if _, err := identity.ParseID(s.v); s.v != "" && err != nil {
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
		authority.WithMaxWait(f.maxWait), authority.WithMaxBatch(f.maxBatch), authority.WithClockTolerance(f.clockTolerance),
		authority.WithOnlineKeyLifetime(f.onlineKeyLifetime)}}
	o.CheckpointInterval = f.witnessFlags().interval
	if f.metrics != "" {
		o.Metrics = metrics.NewServer(metrics.New())
		o.WitnessMetrics = metrics.NewWitness(o.Metrics.Registry)
	}
	if o.TSA, err = f.tsa.options(f.keys, f.clockTolerance); err != nil {
		return err
	}
	if o.TSA != nil && o.Metrics != nil {
		o.TSA.Metrics = metrics.NewTSA(o.Metrics.Registry)
	}
	svc, err := node.StartServerWith(id, listenOr(f.listen, node.DefaultServerPort), f.data, o)
	if err != nil {
		if o.TSA != nil && o.TSA.HTTP != nil {
			o.TSA.HTTP.Close()
		}
		return err
	}
	go serveOps(ctx, ops, svc, f)
	fmt.Fprintf(stdout, "server %s (peer %s) ready, log %s holds %d stamps\n", id.Self.ID, id.Self.PeerID, f.data, svc.LogSize())
	if o.Metrics != nil {
		m.serve(o.Metrics.Registry, svc, "server", stdout)
	}
	if o.TSA != nil && o.TSA.HTTP != nil {
		fmt.Fprintf(stdout, "server RFC 3161 on http://%s/ (chain: http://%s/certchain)\n", o.TSA.HTTP.Addr(), o.TSA.HTTP.Addr())
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
	witnesses, err := f.witnessFlags().policy(id.Dir)
	if err != nil {
		return err
	}
	vo := node.VerifierOptions{Trust: trust, Witnesses: witnesses, StoreDir: f.store, MaxDocumentSize: uint64(f.maxDocument)}
	var wm *metrics.Witness
	if f.metrics != "" {
		vo.Metrics = metrics.NewVerifier(metrics.New())
		wm = metrics.NewWitness(vo.Metrics.Registry)
	}
	svc, err := node.StartVerifier(id, listenOr(f.listen, node.DefaultVerifierPort), vo)
	if err != nil {
		return err
	}
	if f.wit.cosign {
		if err := svc.StartWitnessing(id, f.wit.options(trust, wm)); err != nil {
			svc.Close()
			return err
		}
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
