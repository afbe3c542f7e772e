package main

// Witnessing between separate processes (PROTOCOL.md §13): a server, the
// witnesses 3000, 3001 and 3002, and requesters, each a tsnode process,
// over TCP and QUIC on loopback.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// witnessKeys are the ids of a witnessed network: the authority, the
// requester, the witnesses.
var witnessKeys = []identity.ID{"server", "1000", "3000", "3001", "3002"}

// anyPort listens on TCP and QUIC on ports the system picks.
var anyPort = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// kill9 ends d at once, as a crash would.
func kill9(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("a process killed with SIGKILL did not exit")
	}
}

// sameAddrs are the listen addresses of d's ports, for its restart.
func sameAddrs(d *daemon) []string {
	var out []string
	for _, tr := range []string{"tcp", "quic-v1"} {
		a, _, _ := strings.Cut(d.addrs[tr], "/p2p/")
		out = append(out, a)
	}
	return out
}

// wnode is a witness process and its --data.
type wnode struct {
	id   identity.ID
	data string
	args []string // the flags it was started with, but for --listen
	*daemon
}

// startWitnessProc starts witness id with its state in data, following
// the server at server, peered with peers.
func startWitnessProc(t *testing.T, keys, pass string, id identity.ID, data, server string, peers []string, extra ...string) *wnode {
	t.Helper()
	args := []string{"--id", string(id), "--data", data, "--server", server}
	for _, p := range peers {
		args = append(args, "--peer", p)
	}
	args = append(args, extra...)
	return &wnode{id: id, data: data, args: args, daemon: startDaemonOn(t, "witness", keys, pass, anyPort, args...)}
}

// restart starts w again, on the same ports and the same --data.
func (w *wnode) restart(t *testing.T, keys, pass string) {
	t.Helper()
	w.daemon = startDaemonOn(t, "witness", keys, pass, sameAddrs(w.daemon), w.args...)
}

// witnessNet is a server and the witnesses 3000, 3001 and 3002, each
// peered with those started before it.
type witnessNet struct {
	keys, pass string
	server     *daemon
	w          []*wnode
}

func startWitnessNet(t *testing.T, n int, witnessExtra ...string) *witnessNet {
	t.Helper()
	keys, pass := keysDir(t, witnessKeys...)
	net := &witnessNet{keys: keys, pass: pass}
	net.server = startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	for i := 0; i < n; i++ {
		id := identity.ID(fmt.Sprint(3000 + i))
		var peers []string
		for j, p := range net.w {
			// Peered over TCP and over QUIC, in turn.
			peers = append(peers, p.addrs[[]string{"tcp", "quic-v1"}[(i+j)%2]])
		}
		// Witness 3001 follows the server over QUIC.
		server := net.server.addrs[[]string{"tcp", "quic-v1"}[i%2]]
		net.w = append(net.w, startWitnessProc(t, keys, pass, id, filepath.Join(t.TempDir(), "data"), server, peers, witnessExtra...))
	}
	return net
}

// stamp runs tsnode stamp of a new document on the server at addr, with
// args (witness flags), and returns the document, its receipt and the
// result.
func (n *witnessNet) stamp(t *testing.T, addr, content string, args ...string) (doc, receipt string, res result) {
	t.Helper()
	dir := t.TempDir()
	doc = writeFile(t, filepath.Join(dir, "doc.txt"), content)
	all := append([]string{"stamp", "--keys", n.keys, "--passphrase-file", n.pass, "--server", addr}, args...)
	res = tsnode(t, nil, append(all, doc)...)
	return doc, doc + ".receipt", res
}

// witnessFlagsFor are --witness flags for ids and --witnesses k.
func witnessFlagsFor(k int, ids ...identity.ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, "--witness", string(id))
	}
	return append(out, "--witnesses", fmt.Sprint(k))
}

// cosignedSize reads the size of the head of "server" in the witness
// state of data; -1 when the state holds none.
func cosignedSize(t *testing.T, data string) int64 {
	t.Helper()
	_, heads, err := protocol.ReadWitnessState(filepath.Join(data, "witness-state.json"))
	if err != nil {
		t.Fatalf("witness state: %v", err)
	}
	for _, h := range heads {
		if h.Head.ServerID == "server" {
			return int64(h.Head.Size)
		}
	}
	return -1
}

// waitCosigned waits until the state in data holds a head of "server" of
// size at least min.
func waitCosigned(t *testing.T, data string, min int64, within time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := cosignedSize(t, data)
		if s >= min {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the witness cosigned up to size %d, not %d, within %v", data, s, min, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var witnessMetricsURL = regexp.MustCompile(`(?m)^witness metrics on (http://\S+)/metrics$`)

// witnessMetricsBase is the base URL a witness printed for --metrics.
func witnessMetricsBase(t *testing.T, d *daemon) string {
	t.Helper()
	m := witnessMetricsURL.FindStringSubmatch(d.output())
	if m == nil {
		t.Fatalf("no witness metrics address printed\n%s", d.output())
	}
	return m[1]
}

// TestWitnessedStampAcrossProcesses: a server and three witness
// processes, peered; a stamp that needs two cosignatures gets a v3
// receipt, over TCP and over QUIC, which verify checks against the
// witnesses' keys; policies that cannot be met are usage errors; a v2
// receipt is upgraded.
func TestWitnessedStampAcrossProcesses(t *testing.T) {
	t.Parallel()
	net := startWitnessNet(t, 3)
	all := []identity.ID{"3000", "3001", "3002"}
	for _, tr := range []string{"tcp", "quic-v1"} {
		t.Run(tr, func(t *testing.T) {
			doc, rc, res := net.stamp(t, net.server.addrs[tr], "witnessed over "+tr+"\n",
				append(witnessFlagsFor(2, all...), "--timeout", "40s")...)
			if res.code != 0 {
				t.Fatalf("witnessed stamp:\n%v", res)
			}
			mustContain(t, "witnessed stamp", res, "witnessed  head of size", "cosigned by")
			if got := readJSONField(t, rc, "format"); got != "tsnode-receipt-v3" {
				t.Fatalf("a witnessed stamp wrote a %q receipt", got)
			}
			v := tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", rc}, witnessFlagsFor(2, all...)...), doc)...)
			if v.code != 0 || !strings.HasPrefix(v.stdout, "VALID") || !strings.Contains(v.stdout, "witnessed by") || !strings.Contains(v.stdout, "of 2 required") {
				t.Fatalf("verify --witnesses 2:\n%v", v)
			}
			// Without witness flags, a v3 receipt is still a valid stamp.
			v = tsnode(t, nil, "verify", "--keys", net.keys, "--receipt", rc, doc)
			if v.code != 0 || !strings.HasPrefix(v.stdout, "VALID") {
				t.Fatalf("verify without witness flags:\n%v", v)
			}
			// Three cosignatures from two named witnesses cannot be.
			v = tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", rc}, witnessFlagsFor(3, "3000", "3001")...), doc)...)
			if v.code != exitUsage || !strings.Contains(v.stderr, "--witnesses") {
				t.Errorf("verify --witnesses 3 of two witnesses: want exit %d naming --witnesses\n%v", exitUsage, v)
			}
			// A witness id with no key in the directory.
			v = tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", rc}, witnessFlagsFor(1, "3999")...), doc)...)
			if v.code != exitUsage {
				t.Errorf("verify --witness 3999 (no key): want exit %d\n%v", exitUsage, v)
			}
			// --witness without --witnesses, and the other way round.
			v = tsnode(t, nil, "verify", "--keys", net.keys, "--receipt", rc, "--witness", "3000", doc)
			if v.code != exitUsage || !strings.Contains(v.stderr, "--witnesses K") {
				t.Errorf("verify --witness alone: want exit %d\n%v", exitUsage, v)
			}
			// A changed document fails whatever the cosignatures.
			other := writeFile(t, filepath.Join(t.TempDir(), "other"), "not the document\n")
			v = tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", rc}, witnessFlagsFor(2, all...)...), other)...)
			if v.code != exitFailed || !strings.Contains(v.stdout, "INVALID") {
				t.Errorf("verify of another document:\n%v", v)
			}
		})
	}
	t.Run("upgrade", func(t *testing.T) {
		doc, v2, res := net.stamp(t, net.server.addrs["tcp"], "stamped first, witnessed later\n")
		if res.code != 0 {
			t.Fatalf("plain stamp:\n%v", res)
		}
		if got := readJSONField(t, v2, "format"); got != "tsnode-receipt-v2" {
			t.Fatalf("a plain stamp wrote a %q receipt", got)
		}
		// A v2 receipt does not meet a witness policy.
		v := tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", v2}, witnessFlagsFor(1, "3000")...), doc)...)
		if v.code != exitFailed || !strings.Contains(v.stdout, "INVALID") {
			t.Errorf("verify of a v2 receipt with --witnesses 1:\n%v", v)
		}
		v3 := filepath.Join(t.TempDir(), "upgraded.receipt")
		up := upgradeWhileStamping(t, net, "--receipt", v2, "--out", v3, "--server", net.server.addrs["tcp"],
			"--witness", "3000", "--witnesses", "1", "--timeout", "40s")
		if up.code != 0 || !strings.Contains(up.stdout, "upgraded "+v3) {
			t.Fatalf("upgrade:\n%v", up)
		}
		if got := readJSONField(t, v3, "format"); got != "tsnode-receipt-v3" {
			t.Fatalf("upgrade wrote a %q receipt", got)
		}
		if got := readJSONField(t, v2, "format"); got != "tsnode-receipt-v2" {
			t.Errorf("upgrade --out changed the v2 receipt to %q", got)
		}
		v = tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", v3}, witnessFlagsFor(1, "3000")...), doc)...)
		if v.code != 0 || !strings.Contains(v.stdout, "witnessed by 3000") {
			t.Fatalf("verify of the upgraded receipt:\n%v", v)
		}
	})
}

// upgradeWhileStamping runs tsnode upgrade args, stamping other
// documents meanwhile so that the log grows and the next head is
// published and cosigned after upgrade joined the topic.
func upgradeWhileStamping(t *testing.T, net *witnessNet, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := tsnodeCmd(t, ctx, nil, append([]string{"upgrade", "--keys", net.keys, "--passphrase-file", net.pass}, args...)...)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	docs := t.TempDir()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 15; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Second):
			}
			doc := filepath.Join(docs, fmt.Sprint("grow", i))
			if err := os.WriteFile(doc, []byte(fmt.Sprintf("growing the log %d\n", i)), 0o644); err != nil {
				t.Errorf("%v", err)
				return
			}
			r := tsnodeQuiet(t, ctx, "stamp", "--keys", net.keys, "--passphrase-file", net.pass, "--server", net.server.addrs["tcp"], doc)
			if r != nil {
				t.Logf("stamp to grow the log: %v", r)
			}
		}
	}()
	err := <-done
	close(stop)
	wg.Wait()
	res := result{stdout: out.String(), stderr: errb.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		res.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("tsnode upgrade: %v", err)
	}
	return res
}

// tsnodeQuiet runs tsnode args from a goroutine other than the test's:
// it reports an error instead of failing the test.
func tsnodeQuiet(t *testing.T, ctx context.Context, args ...string) error {
	cmd := tsnodeCmd(t, ctx, nil, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tsnode %v: %v\n%s", args, err, out)
	}
	return nil
}

// TestWitnessedStampNoWitness: with no witness running, a stamp that
// needs a cosignature of 3000 fails within --timeout, says whose
// cosignature is missing, and keeps the unwitnessed receipt.
func TestWitnessedStampNoWitness(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, witnessKeys...)
	net := &witnessNet{keys: keys, pass: pass}
	net.server = startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	start := time.Now()
	doc, rc, res := net.stamp(t, net.server.addrs["tcp"], "nobody watches\n", "--witnesses", "1", "--witness", "3000", "--timeout", "4s")
	took := time.Since(start)
	if res.code != exitFailed {
		t.Fatalf("want exit %d\n%v", exitFailed, res)
	}
	mustContain(t, "no witness", res, "no cosignature from 3000", "the unwitnessed receipt is "+rc, "tsnode upgrade --receipt")
	if took > 30*time.Second {
		t.Errorf("the stamp took %v with --timeout 4s", took)
	}
	if got := readJSONField(t, rc, "format"); got != "tsnode-receipt-v2" {
		t.Fatalf("the unwitnessed receipt is %q", got)
	}
	if v := tsnode(t, nil, "verify", "--keys", keys, "--receipt", rc, doc); v.code != 0 || !strings.HasPrefix(v.stdout, "VALID") {
		t.Errorf("the unwitnessed receipt does not verify as a stamp:\n%v", v)
	}
	// Upgrade, with still no witness, gives up within its --timeout.
	up := tsnode(t, nil, "upgrade", "--keys", keys, "--passphrase-file", pass, "--receipt", rc, "--server", net.server.addrs["tcp"],
		"--witness", "3000", "--witnesses", "1", "--timeout", "3s")
	if up.code != exitFailed || !strings.Contains(up.stdout+up.stderr, "no cosignature from 3000") {
		t.Errorf("upgrade with no witness: want exit %d naming 3000\n%v", exitFailed, up)
	}
	if got := readJSONField(t, rc, "format"); got != "tsnode-receipt-v2" {
		t.Errorf("a failed upgrade left a %q receipt", got)
	}
}

// TestWitnessStateDamaged: a witness refuses to start on a damaged state
// file, or with the state gone from a --data that holds other files,
// naming the file; an absent or empty --data starts afresh.
func TestWitnessStateDamaged(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, witnessKeys...)
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	witnessArgs := func(data string) []string {
		return []string{"--role", "witness", "--keys", keys, "--passphrase-file", pass, "--id", "3000",
			"--listen", "/ip4/127.0.0.1/tcp/0", "--data", data, "--server", server.addrs["tcp"]}
	}
	// A good state file to damage: a witness's first start writes one.
	good := filepath.Join(t.TempDir(), "absent")
	w := startDaemonOn(t, "witness", keys, pass, anyPort, "--id", "3000", "--data", good, "--server", server.addrs["tcp"])
	w.stop(t)
	state := filepath.Join(good, "witness-state.json")
	raw, err := os.ReadFile(state)
	if err != nil {
		t.Fatalf("a witness started on an absent --data wrote no state: %v", err)
	}
	if got := readJSONField(t, state, "format"); got != "tsnode-witness-state-v1" {
		t.Fatalf("state format %q", got)
	}
	for _, tc := range []struct {
		name  string
		setup func(dir string)
		want  []string
	}{
		{"truncated", func(dir string) {
			writeFile(t, filepath.Join(dir, "witness-state.json"), string(raw[:len(raw)/2]))
		}, []string{"witness-state.json", "restore"}},
		{"garbage", func(dir string) {
			writeFile(t, filepath.Join(dir, "witness-state.json"), "\x00\x01not json at all\xff")
		}, []string{"witness-state.json"}},
		{"empty file", func(dir string) {
			writeFile(t, filepath.Join(dir, "witness-state.json"), "")
		}, []string{"witness-state.json"}},
		{"another witness's", func(dir string) {
			writeFile(t, filepath.Join(dir, "witness-state.json"), strings.Replace(string(raw), `"3000"`, `"3001"`, 1))
		}, []string{"witness-state.json", "3001", "wrong --data"}},
		{"deleted, evidence left", func(dir string) {
			if err := os.Mkdir(filepath.Join(dir, "evidence"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, []string{"witness-state.json is missing", "evidence"}},
		{"deleted, a file left", func(dir string) {
			writeFile(t, filepath.Join(dir, "notes.txt"), "x\n")
		}, []string{"witness-state.json is missing", "notes.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(dir)
			before, _ := os.ReadFile(filepath.Join(dir, "witness-state.json"))
			res := tsnode(t, nil, witnessArgs(dir)...)
			if res.code != exitFailed {
				t.Fatalf("want exit %d\n%v", exitFailed, res)
			}
			mustContain(t, tc.name, res, append(tc.want, filepath.Join(dir, "witness-state.json"))...)
			if strings.Contains(res.stdout, "listening on") {
				t.Errorf("the witness listened before refusing\n%v", res)
			}
			after, _ := os.ReadFile(filepath.Join(dir, "witness-state.json"))
			if string(after) != string(before) {
				t.Errorf("the refused start changed the state file")
			}
		})
	}
	// An empty --data starts afresh, with a state of no heads.
	empty := t.TempDir()
	w = startDaemonOn(t, "witness", keys, pass, anyPort, "--id", "3000", "--data", empty, "--server", server.addrs["tcp"])
	w.stop(t)
	if s := cosignedSize(t, empty); s != -1 {
		t.Errorf("a fresh witness of an empty log holds a head of size %d", s)
	}
	// And the good state it wrote opens again.
	w = startDaemonOn(t, "witness", keys, pass, anyPort, "--id", "3000", "--data", good, "--server", server.addrs["tcp"])
	w.stop(t)
}
