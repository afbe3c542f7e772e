package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/bench"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/tsa"
)

func cmdBench(args []string, stdout, stderr io.Writer) error {
	var cfg bench.Config
	fs := newFlags("tsnode bench", stderr)
	fs.StringVar(&cfg.Keys, "keys", defaultKeysDir, "keys directory `DIR`: public/*.pem, and the private keys of the requester ids (and of the server, unless --server)")
	passFile := fs.String("passphrase-file", "", "read the private keys' passphrase from this `file` (else $TSNODE_PASSPHRASE, else a prompt); one passphrase for all")
	server := fs.String("server", "", "target the running server at this `multiaddr` instead of starting one per flow (then its CPU and RSS are measured only with --server-pid)")
	serverID := fs.String("server-id", string(identity.ServerID), "the server's id in the identity directory")
	listen := fs.String("listen", node.LoopbackListen, "listen `multiaddr` of the server the bench starts")
	ids := fs.String("ids", "", "comma-separated requester `ids`, one per requester (default 1000, 1001, ...); each needs its own key")
	fs.IntVar(&cfg.Requesters, "requesters", 0, "number of requester hosts, each with its own identity and one connection (default: one per --ids, else 1)")
	fs.IntVar(&cfg.Sessions, "sessions", 0, "session flow: stamp sessions in total, spread over the requesters (default 4 per requester, at most --inflight)")
	fs.IntVar(&cfg.InFlight, "inflight", 256, "closed loop (the default): stamps in flight at any time, in total")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: send `R` stamps per second in total on a schedule, answered or not, and measure each latency from its scheduled time (not with --inflight)")
	fs.StringVar(&cfg.Schedule, "schedule", bench.SchedulePoisson, "open loop: the send times, poisson (exponential gaps) or fixed (1/rate apart)")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "open loop: seed of the poisson schedule")
	fs.IntVar(&cfg.MaxOutstanding, "max-outstanding", bench.DefaultMaxOutstanding, "open loop: at most `N` stamps unanswered; a request due while N are is dropped and counted")
	serverBin := fs.String("server-bin", "", "spawn this tsnode `binary` as the server instead of this one (to compare two builds)")
	serverPID := fs.Int("server-pid", 0, "with --server or --tsa-url: measure the CPU time and peak RSS of this `pid`, the server's process on this machine (Linux)")
	fs.StringVar(&cfg.TSAURL, "tsa-url", "", "load the RFC 3161 server at this `URL` over HTTP instead of starting tsnode servers (the rfc3161 flow; needs no keys): any RFC 3161 server, sigstore's say, whose tokens get the standard check (CMS signature, X.509 chain to the root of --tsa-chain at genTime), not tsnode's trust rule")
	fs.StringVar(&cfg.TSAChain, "tsa-chain", "", "with --tsa-url: the PEM `file` of the chain to check its tokens against, signing certificate first, root last (default: the chain the server serves at /api/v1/timestamp/certchain, trusted as served)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each flow runs (at most 1h)")
	fs.DurationVar(&cfg.OneShotDuration, "oneshot-duration", 0, "how long the one-shot flow runs (default: --duration)")
	fs.IntVar(&cfg.Count, "count", 0, "stop each flow after this many stamps (0: only --duration bounds it)")
	flows := fs.String("flows", "oneshot,session", "comma-separated flows to run: oneshot (prototype-style, /tsnode/stamp/1.0.0), session (/tsnode/stamp/2.0.0), rfc3161 (RFC 3161 tokens over HTTP: the server the bench starts gets --http on a free port of 127.0.0.1), rfc3161-p2p (RFC 3161 tokens over "+tsa.ProtocolID+"); every token's signature, chain, imprint and nonce are checked (default with --tsa-url: rfc3161)")
	fs.IntVar(&cfg.Reverify, "reverify", bench.DefaultReverify, "also verify every `N`th stamp as a receipt with the offline verifier (1: all, 0: none); the protocol client checks every stamp anyway. RFC 3161 flows against tsnode: every Nth token (and the first of each signing certificate) also gets tsnode's trust rule, Trust.CheckTSAToken, three RSA-4096 verifications; every token gets the signature and chain check")
	fs.IntVar(&cfg.MaxErrors, "max-errors", 100, "end a flow once more than this many stamps (or tokens) failed")
	fs.DurationVar(&cfg.StampTimeout, "timeout", 30*time.Second, "give up on one stamp after this long")
	jsonOut := fs.String("json", "", "also write the results as JSON to this `file`")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	logs := addLogFlags(fs, ptr("error"), false)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("bench takes no arguments, got %q", pos)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["rate"] && set["inflight"]:
		return usageErr("--rate and --inflight are mutually exclusive: --rate runs the open loop at a rate, --inflight the closed loop at a concurrency")
	case set["rate"] && !(cfg.Rate > 0 && cfg.Rate <= bench.MaxRate):
		return usageErr("--rate %g: want more than 0 and at most %d stamps per second", cfg.Rate, bench.MaxRate)
	case !set["rate"] && (set["schedule"] || set["seed"] || set["max-outstanding"]):
		return usageErr("--schedule, --seed and --max-outstanding are for the open loop: give --rate")
	case cfg.Schedule != bench.SchedulePoisson && cfg.Schedule != bench.ScheduleFixed:
		return usageErr("--schedule %q: want poisson or fixed", cfg.Schedule)
	case cfg.MaxOutstanding < 1 || cfg.MaxOutstanding > bench.MaxOutstandingCap:
		return usageErr("--max-outstanding %d: want 1 to %d", cfg.MaxOutstanding, bench.MaxOutstandingCap)
	case *serverBin != "" && *server != "":
		return usageErr("--server-bin is for the server the bench starts, not with --server")
	case set["server-pid"] && *server == "" && cfg.TSAURL == "":
		return usageErr("--server-pid is for a server given with --server or --tsa-url (the bench measures the servers it starts anyway)")
	case cfg.TSAURL != "" && (*server != "" || *serverBin != ""):
		return usageErr("--tsa-url loads a server that is running: not with --server or --server-bin")
	case cfg.TSAChain != "" && cfg.TSAURL == "":
		return usageErr("--tsa-chain is for --tsa-url (a tsnode server's tokens are checked against its identity key)")
	}
	if cfg.TSAURL != "" && !set["flows"] {
		*flows = bench.FlowRFC3161
	}
	if !set["rate"] {
		cfg.Schedule, cfg.Seed, cfg.MaxOutstanding = "", 0, 0
	}
	if *serverBin != "" {
		if err := bench.CheckServerBin(*serverBin); err != nil {
			return usageErr("--server-bin: %v", err)
		}
		if cfg.ServerExe, err = filepath.Abs(*serverBin); err != nil {
			return err
		}
	}
	if set["server-pid"] {
		if err := bench.CheckServerPID(*serverPID); err != nil {
			return usageErr("--server-pid: %v", err)
		}
		cfg.ServerPID = *serverPID
	}
	// Zero means "the default" in bench.Config: refuse it here.
	switch {
	case cfg.InFlight < 1:
		return usageErr("--inflight %d: want at least 1", cfg.InFlight)
	case cfg.Duration <= 0:
		return usageErr("--duration %s: want more than 0", cfg.Duration)
	case cfg.OneShotDuration < 0:
		return usageErr("--oneshot-duration %s: want more than 0", cfg.OneShotDuration)
	case cfg.Requesters < 0 || cfg.Sessions < 0:
		return usageErr("--requesters and --sessions must be positive")
	case cfg.MaxErrors < 1:
		return usageErr("--max-errors %d: want at least 1", cfg.MaxErrors)
	case cfg.StampTimeout <= 0:
		return usageErr("--timeout %s: want more than 0", cfg.StampTimeout)
	case cfg.Reverify < 0:
		return usageErr("--reverify %d: want 0 (none), 1 (all) or N (every Nth)", cfg.Reverify)
	}
	cfg.ServerAddr = *server
	cfg.Listen = *listen
	cfg.Flows = bench.ParseFlows(*flows)
	if len(cfg.Flows) == 0 {
		return usageErr("--flows: give oneshot, session, rfc3161 or rfc3161-p2p")
	}
	if cfg.ServerID, err = identity.ParseID(*serverID); err != nil {
		return usageErr("--server-id: %v", err)
	}
	for _, s := range strings.Split(*ids, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		id, err := identity.ParseID(s)
		if err != nil {
			return usageErr("--ids: %v", err)
		}
		cfg.IDs = append(cfg.IDs, id)
	}
	if len(cfg.IDs) > 0 && cfg.Requesters != 0 && cfg.Requesters != len(cfg.IDs) {
		return usageErr("--requesters %d but %d --ids: give one id per requester", cfg.Requesters, len(cfg.IDs))
	}
	if *server != "" && *listen != node.LoopbackListen {
		return usageErr("--listen is for the server the bench starts, not with --server")
	}
	if cfg.Reverify == 0 {
		cfg.Reverify = -1
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		return usageErr("%v", err)
	}
	if err := logs.setup(); err != nil {
		return err
	}
	if cfg.TSAURL == "" { // a server given by URL needs no keys
		if cfg.Passphrase, err = readPassphrase(*passFile, false, nil); err != nil {
			return err
		}
		cfg.PassphraseFile = *passFile
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil && len(rep.Flows) > 0 {
		if werr := rep.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
		if *jsonOut != "" {
			if werr := os.WriteFile(*jsonOut, rep.JSON(), 0o644); werr != nil && err == nil {
				err = fmt.Errorf("cannot write --json: %w", werr)
			} else if werr == nil {
				fmt.Fprintf(stdout, "results written to %s\n", *jsonOut)
			}
		}
	}
	if err != nil {
		return err
	}
	if n := rep.Errors(); n > 0 {
		fmt.Fprintf(stderr, "tsnode bench: %d stamps or tokens failed\n", n)
		return errReported
	}
	return nil
}
