package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/tsa"
)

// serverEnv makes the test binary act as `tsnode --role server`, so the
// spawn path runs without building tsnode.
const serverEnv = "TSNODE_BENCH_TEST_SERVER=1"

func TestMain(m *testing.M) {
	if os.Getenv("TSNODE_BENCH_TEST_SERVER") == "1" {
		os.Exit(testServer(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// testServer is the part of `tsnode --role server` the bench relies on:
// the same flags (--http and --tsa too), the same "server RFC 3161 on"
// and "server listening on" lines, SIGTERM stops it.
func testServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	role := fs.String("role", "", "")
	id := fs.String("id", "", "")
	keys := fs.String("keys", "", "")
	passFile := fs.String("passphrase-file", "", "")
	data := fs.String("data", "", "")
	listen := fs.String("listen", "", "")
	httpAddr := fs.String("http", "", "")
	tsaOn := fs.Bool("tsa", false, "")
	fs.String("log-level", "", "")
	if err := fs.Parse(args); err != nil || *role != "server" {
		fmt.Fprintln(os.Stderr, "bad server flags", args)
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "server:", err); return 1 }
	dir, err := identity.LoadDirectory(*keys)
	if err != nil {
		return fail(err)
	}
	pass, err := os.ReadFile(*passFile)
	if err != nil {
		return fail(err)
	}
	key, err := identity.LoadPrivateKey(identity.PrivateKeyPath(*keys, identity.ID(*id)), pass, nil)
	if err != nil {
		return fail(err)
	}
	nid, err := node.NewIdentity(identity.ID(*id), key, dir)
	if err != nil {
		return fail(err)
	}
	var o node.ServerOptions
	if *tsaOn || *httpAddr != "" {
		o.TSA = &node.TSAOptions{KeysDir: *keys}
	}
	if *httpAddr != "" {
		if o.TSA.HTTP, err = tsa.ListenHTTP(*httpAddr); err != nil {
			return fail(err)
		}
		fmt.Printf("server RFC 3161 on http://%s/ (chain: http://%s/certchain)\n", o.TSA.HTTP.Addr(), o.TSA.HTTP.Addr())
	}
	svc, err := node.StartServerWith(nid, []string{*listen}, *data, o)
	if err != nil {
		return fail(err)
	}
	if prof := os.Getenv("TSNODE_BENCH_SERVER_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	svc.PrintAddrs(os.Stdout, "server")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := svc.Run(ctx, node.DefaultDrainTimeout); err != nil {
		return fail(err)
	}
	return 0
}

// BenchmarkFlows runs the bench against a server spawned from this test
// binary, for profiling both sides on the test-only keys:
//
//	TSNODE_BENCH_SERVER_CPUPROFILE=/tmp/server.prof go test -run NONE \
//	    -bench Flows -benchtime 1x -cpuprofile /tmp/client.prof ./internal/bench/
//
// TSNODE_BENCH_FLOWS, _DURATION and _INFLIGHT change the run (defaults
// session, 10s, 256); TSNODE_BENCH_RATE runs the open loop instead.
func BenchmarkFlows(b *testing.B) {
	keys := b.TempDir()
	testkeys.WriteKeysDir(b, keys, identity.ServerID, identity.RequesterID, identity.VerifierID)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{
		Keys: keys, Passphrase: []byte(testkeys.Passphrase),
		ServerExe: exe, ServerEnv: []string{serverEnv},
		IDs:      []identity.ID{identity.RequesterID, identity.VerifierID},
		Flows:    ParseFlows(cmp.Or(os.Getenv("TSNODE_BENCH_FLOWS"), FlowSession)),
		Progress: os.Stderr,
	}
	if cfg.Duration, err = time.ParseDuration(cmp.Or(os.Getenv("TSNODE_BENCH_DURATION"), "10s")); err != nil {
		b.Fatal(err)
	}
	if rate := os.Getenv("TSNODE_BENCH_RATE"); rate != "" {
		if cfg.Rate, err = strconv.ParseFloat(rate, 64); err != nil {
			b.Fatal(err)
		}
	} else if cfg.InFlight, err = strconv.Atoi(cmp.Or(os.Getenv("TSNODE_BENCH_INFLIGHT"), "256")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rep, err := Run(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		_ = rep.WriteTable(os.Stderr)
		for _, f := range rep.Flows {
			b.ReportMetric(f.PerSecond, f.Flow+"-stamps/s")
		}
	}
}

// testConfig is a small run with the test-only keys: two requesters
// (ids 1000 and 2000), a server spawned from the test binary.
func testConfig(t *testing.T) Config {
	t.Helper()
	keys := t.TempDir()
	testkeys.WriteKeysDir(t, keys, identity.ServerID, identity.RequesterID, identity.VerifierID)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Keys:       keys,
		Passphrase: []byte(testkeys.Passphrase),
		ServerExe:  exe,
		ServerEnv:  []string{serverEnv},
		IDs:        []identity.ID{identity.RequesterID, identity.VerifierID},
		InFlight:   8,
		Duration:   20 * time.Second,
		Count:      40,
		MaxErrors:  1,
		Reverify:   1,
	}
}

func checkFlow(t *testing.T, f *FlowResult, wantStamps uint64) {
	t.Helper()
	if f.Stamps != wantStamps || f.Errors != 0 || f.FirstError != "" {
		t.Fatalf("%s: %d stamps, %d errors (%s); want %d stamps, no error", f.Flow, f.Stamps, f.Errors, f.FirstError, wantStamps)
	}
	if f.Reverified != f.Stamps {
		t.Errorf("%s: %d of %d stamps re-verified as receipts", f.Flow, f.Reverified, f.Stamps)
	}
	l := f.Latency
	if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("%s: latency percentiles out of order: %+v", f.Flow, l)
	}
	if f.PerSecond <= 0 || f.Seconds <= 0 {
		t.Errorf("%s: %.1f stamps/s over %.2fs", f.Flow, f.PerSecond, f.Seconds)
	}
}

func TestRunSpawnedServer(t *testing.T) {
	cfg := testConfig(t)
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 2 || rep.Flows[0].Flow != FlowOneShot || rep.Flows[1].Flow != FlowSession {
		t.Fatalf("flows %+v", rep.Flows)
	}
	for _, f := range rep.Flows {
		checkFlow(t, f, 40)
		if f.ServerCPU == nil || *f.ServerCPU < 0 || f.ServerPeakRSS == nil || *f.ServerPeakRSS <= 0 {
			t.Errorf("%s: server CPU %v, peak RSS %v: want measured", f.Flow, f.ServerCPU, f.ServerPeakRSS)
		}
	}
	if rep.Flows[1].Sessions != 8 { // 4 per requester, at most one per stamp in flight
		t.Errorf("%d sessions, want 8", rep.Flows[1].Sessions)
	}
	if rep.Ratio == nil || *rep.Ratio <= 0 {
		t.Fatalf("ratio %v", rep.Ratio)
	}
	if rep.Errors() != 0 {
		t.Fatalf("%d errors", rep.Errors())
	}
	if !strings.Contains(progress.String(), "[session] done: 40 stamps") {
		t.Errorf("progress:\n%s", progress.String())
	}

	// The JSON holds the same data as the report.
	var back Report
	if err := json.Unmarshal(rep.JSON(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, rep) {
		t.Errorf("JSON round trip differs:\n%s", rep.JSON())
	}
	var tab bytes.Buffer
	if err := rep.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stamps/s", "p99 ms", "server peak RSS MiB", "oneshot", "session", "session/oneshot throughput ratio: "} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

func TestRunExistingServer(t *testing.T) {
	cfg := testConfig(t)
	svc := startInProcessServer(t)
	cfg.ServerAddr = node.FullAddrs(svc.Host)[0].String()
	cfg.ServerExe = "/nonexistent" // must not be used
	cfg.Flows = []string{FlowSession}
	cfg.Count = 30
	cfg.InFlight = 1
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 1 || rep.Ratio != nil {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Flows[0]
	checkFlow(t, f, 30)
	if f.ServerCPU != nil || f.ServerPeakRSS != nil {
		t.Errorf("server CPU and RSS measured for a server that is not ours")
	}
	if got := svc.LogSize(); got != 30 {
		t.Errorf("server log holds %d stamps, want 30", got)
	}
	var tab bytes.Buffer
	_ = rep.WriteTable(&tab)
	if !strings.Contains(tab.String(), "n/a") {
		t.Errorf("table does not say n/a:\n%s", tab.String())
	}
}

func TestServerUnreachable(t *testing.T) {
	cfg := testConfig(t)
	cfg.ServerAddr = "/ip4/127.0.0.1/tcp/1"
	_, err := Run(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "cannot reach server server") {
		t.Fatalf("err = %v, want cannot reach server", err)
	}
}

func TestSpawnFailures(t *testing.T) {
	cfg := testConfig(t)
	cfg.ServerExe = filepath.Join(t.TempDir(), "no-such-tsnode")
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "server binary") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing binary: err = %v", err)
	}
	cfg.ServerExe = filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(cfg.ServerExe, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("binary not executable: err = %v", err)
	}

	// The server cannot decrypt its key: its own message comes back.
	cfg = testConfig(t)
	cfg.PassphraseFile = filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(cfg.PassphraseFile, []byte("wrong passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Run(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "server:") {
		t.Errorf("wrong passphrase: err = %v", err)
	}
}

func TestConfigRefused(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"negative duration":         func(c *Config) { c.Duration = -time.Second },
		"duration over the cap":     func(c *Config) { c.Duration = 2 * MaxDuration },
		"negative count":            func(c *Config) { c.Count = -1 },
		"unknown flow":              func(c *Config) { c.Flows = []string{"oneshot", "turbo"} },
		"flow twice":                func(c *Config) { c.Flows = []string{"session", "session"} },
		"ids do not match":          func(c *Config) { c.Requesters = 3 },
		"id twice":                  func(c *Config) { c.IDs = []identity.ID{"1000", "1000"} },
		"server as requester":       func(c *Config) { c.IDs = []identity.ID{"1000", "server"} },
		"fewer sessions than hosts": func(c *Config) { c.Sessions = 1 },
		"too many in flight per session": func(c *Config) {
			c.Sessions = 2
			c.InFlight = 2*1024 + 1
		},
		"negative reverify":            func(c *Config) { c.Reverify = -2 },
		"negative rate":                func(c *Config) { c.Rate = -1 },
		"rate over the cap":            func(c *Config) { c.Rate = 2 * MaxRate },
		"schedule without rate":        func(c *Config) { c.Schedule = ScheduleFixed },
		"max outstanding without rate": func(c *Config) { c.MaxOutstanding = 10 },
		"unknown schedule":             func(c *Config) { c.Rate, c.Schedule = 100, "bursty" },
		"max outstanding over the cap": func(c *Config) { c.Rate, c.MaxOutstanding = 100, MaxOutstandingCap+1 },
		"server pid without server":    func(c *Config) { c.ServerPID = os.Getpid() },
		"server pid negative":          func(c *Config) { c.ServerAddr, c.ServerPID = "/ip4/127.0.0.1/tcp/1", -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Keys: "/nonexistent", Passphrase: []byte("x"), IDs: []identity.ID{"1000", "2000"}}
			mod(&cfg)
			if _, err := Run(t.Context(), cfg); err == nil || strings.Contains(err.Error(), "nonexistent") {
				t.Fatalf("err = %v, want the configuration refused before anything runs", err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := Config{Requesters: 4, InFlight: 256}
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	if want := []identity.ID{"1000", "1001", "1002", "1003"}; !reflect.DeepEqual(cfg.IDs, want) {
		t.Errorf("ids %v, want %v", cfg.IDs, want)
	}
	if cfg.Sessions != 16 || cfg.OneShotDuration != cfg.Duration {
		t.Errorf("sessions %d, one-shot duration %s", cfg.Sessions, cfg.OneShotDuration)
	}
	cfg = Config{Requesters: 2, InFlight: 1}
	cfg.Defaults()
	if cfg.Sessions != 2 {
		t.Errorf("one in flight over two requesters: %d sessions, want 2", cfg.Sessions)
	}
}

// startInProcessServer runs a server for the test-only "server" key in
// this process, on loopback; it is closed at cleanup.
func startInProcessServer(t *testing.T) *node.Service {
	t.Helper()
	nid, err := node.NewIdentity(identity.ServerID, testkeys.Private(t, identity.ServerID), testkeys.Directory(t, identity.ServerID, identity.RequesterID, identity.VerifierID))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := node.StartServer(nid, []string{node.LoopbackListen}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}
