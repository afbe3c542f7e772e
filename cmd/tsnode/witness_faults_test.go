package main

// Witnessing's failures between separate processes: a witness that
// crashes or is cut off and comes back, a peer flooding the topic, an
// authority that stops publishing, and an authority that equivocates.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/protocol"
)

// TestWitnessCrashAndPartition: a witness killed with SIGKILL and
// restarted on its ports and --data comes back and cosigns later heads,
// its state never behind what it had cosigned before the crash; a
// witness stopped (SIGSTOP) cosigns nothing while the others still do,
// and cosigns again once it goes on.
func TestWitnessCrashAndPartition(t *testing.T) {
	t.Parallel()
	net := startWitnessNet(t, 3)
	all := []identity.ID{"3000", "3001", "3002"}
	addr := net.server.addrs["tcp"]
	_, _, res := net.stamp(t, addr, "all three\n", append(witnessFlagsFor(3, all...), "--timeout", "40s")...)
	if res.code != 0 {
		t.Fatalf("stamp cosigned by all three:\n%v", res)
	}

	// SIGKILL and restart (phases of one test: the restarted process
	// lives until the test's end).
	{
		w := net.w[1] // 3001
		before := waitCosigned(t, w.data, 1, 10*time.Second)
		kill9(t, w.daemon)
		// The others go on cosigning; 3001's cosignature cannot come.
		_, _, res := net.stamp(t, addr, "while 3001 is down\n", append(witnessFlagsFor(2, "3000", "3002"), "--timeout", "40s")...)
		if res.code != 0 {
			t.Fatalf("stamp while 3001 is down:\n%v", res)
		}
		if s := cosignedSize(t, w.data); s != before {
			t.Fatalf("the state of a killed witness changed from %d to %d", before, s)
		}
		w.restart(t, net.keys, net.pass)
		// From the restart on, the state is never behind what it was.
		var mu sync.Mutex
		least := int64(1 << 62)
		done := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				_, heads, err := protocol.ReadWitnessState(filepath.Join(w.data, "witness-state.json"))
				if err == nil {
					for _, h := range heads {
						mu.Lock()
						least = min(least, int64(h.Head.Size))
						mu.Unlock()
					}
				} else {
					t.Errorf("witness state after the restart: %v", err)
				}
				select {
				case <-done:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		// A head published in the first seconds after the restart may
		// not reach 3001 (over QUIC its peers still hold the killed
		// process's connections: no FIN reaches them), and the next head
		// comes only when the log grows or after a minute: stamp again,
		// with a short --timeout, until 3001 cosigns.
		restarted := time.Now()
		var tries int
		for tries = 1; ; tries++ {
			_, _, res = net.stamp(t, addr, fmt.Sprintf("3001 is back %d\n", tries), append(witnessFlagsFor(1, "3001"), "--timeout", "4s")...)
			if res.code == 0 || time.Since(restarted) > 90*time.Second {
				break
			}
		}
		close(done)
		<-sampled
		if res.code != 0 {
			t.Fatalf("stamp that needs the restarted 3001:\n%v\n%s", res, w.output())
		}
		t.Logf("the restarted 3001 cosigned %v after its restart, at stamp %d", time.Since(restarted).Round(time.Second), tries)
		after := cosignedSize(t, w.data)
		if after <= before {
			t.Errorf("the restarted witness's state holds size %d, before the crash %d", after, before)
		}
		if least < before {
			t.Errorf("after the restart the state held a head of size %d, smaller than %d before the crash", least, before)
		}
	}

	// SIGSTOP and SIGCONT.
	{
		w := net.w[2] // 3002
		before := cosignedSize(t, w.data)
		sendSignal(t, w.daemon, syscall.SIGSTOP)
		resumed := false
		defer func() {
			if !resumed {
				_ = w.cmd.Process.Signal(syscall.SIGCONT)
			}
		}()
		_, _, res := net.stamp(t, addr, "3002 is cut off\n", append(witnessFlagsFor(2, "3000", "3001"), "--timeout", "40s")...)
		if res.code != 0 {
			t.Fatalf("stamp while 3002 is stopped:\n%v\n3000:\n%s\n3001:\n%s", res, net.w[0].output(), net.w[1].output())
		}
		_, _, res = net.stamp(t, addr, "needs 3002\n", "--witness", "3002", "--witnesses", "1", "--timeout", "3s")
		if res.code != exitFailed || !strings.Contains(res.stdout+res.stderr, "no cosignature from 3002") {
			t.Fatalf("a stopped witness's cosignature: want exit %d naming 3002\n%v", exitFailed, res)
		}
		sendSignal(t, w.daemon, syscall.SIGCONT)
		resumed = true
		_, _, res = net.stamp(t, addr, "3002 rejoined\n", append(witnessFlagsFor(1, "3002"), "--timeout", "40s")...)
		if res.code != 0 {
			t.Fatalf("stamp that needs the resumed 3002:\n%v\n%s", res, w.output())
		}
		if after := cosignedSize(t, w.data); after <= before {
			t.Errorf("the resumed witness's state holds size %d, before %d", after, before)
		}
	}
}

// gossipRejected sums tsnode_gossip_rejected_total over its reasons.
func gossipRejected(t *testing.T, base string) (total float64, by map[string]float64) {
	t.Helper()
	by = map[string]float64{}
	for _, r := range []string{"size", "stranger", "malformed", "signature", "topic"} {
		v := metricValue(t, base, `tsnode_gossip_rejected_total{reason="`+r+`"}`)
		by[r] = v
		total += v
	}
	return total, by
}

// TestWitnessFlooded: a peer of the directory (1000's key) floods a
// witness process with garbage and oversized messages on the topic of
// server; the witness drops and counts them, and an honest stamp still
// gets its cosignatures.
func TestWitnessFlooded(t *testing.T) {
	t.Parallel()
	net := startWitnessNet(t, 2, "--metrics", "127.0.0.1:0")
	target := net.w[0]
	base := witnessMetricsBase(t, target.daemon)
	before, _ := gossipRejected(t, base)

	// The flooder: GossipSub without tsnode's validators, on a host
	// whose identity is 1000, a requester of the directory.
	fh := testnet.NewHost(t, "1000", "")
	m, err := ma.NewMultiaddr(target.addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := fh.Connect(ctx, *info); err != nil {
		t.Fatalf("the flooder cannot reach the witness: %v", err)
	}
	ps, err := pubsub.NewGossipSub(ctx, fh, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { d := sha256.Sum256(m.Data); return string(d[:]) }),
		pubsub.WithMaxMessageSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(protocol.Topic("server"))
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Close()
	for deadline := time.Now().Add(15 * time.Second); !containsPeer(topic.ListPeers(), info.ID); {
		if time.Now().After(deadline) {
			t.Fatal("the witness never showed up on the topic of server")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A head in server's name signed by 1000: a bad signature.
	forged, err := protocol.SignTreeHead(testkeys.Private(t, "1000"), &protocol.TreeHead{ServerID: "server",
		ServerPeer: testnet.Entry(t, "server").PeerID, Size: 1, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	flooded := make(chan int, 1)
	go func() {
		n := 0
		defer func() { flooded <- n }()
		for i := range 240 {
			var msg []byte
			switch {
			case i >= 220:
				// Last, as they end the flooder's stream: far over
				// the RPC limit.
				msg = make([]byte, 64<<10+i)
			case i%4 == 0:
				msg = make([]byte, protocol.MaxGossipMessageSize+1+i) // oversized, under the RPC limit
			case i%4 == 1:
				msg = []byte(strings.Repeat("garbage ", i%17+1) + fmt.Sprint(i))
			case i%4 == 2:
				msg = append(protocol.EncodeGossipHead(forged), byte(i)) // trailing bytes
			default:
				msg = []byte(fmt.Sprintf(`{"head":%d}`, i))
			}
			if err := topic.Publish(ctx, msg); err != nil {
				return
			}
			n++
			if i%20 == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()
	// An honest stamp during the flood.
	doc, rc, res := net.stamp(t, net.server.addrs["tcp"], "amid the flood\n", append(witnessFlagsFor(2, "3000", "3001"), "--timeout", "40s")...)
	if n := <-flooded; n != 240 {
		t.Errorf("the flooder published %d of 240 messages", n)
	}
	if res.code != 0 {
		t.Fatalf("an honest stamp during the flood:\n%v\n%s", res, target.output())
	}
	if v := tsnode(t, nil, append(append([]string{"verify", "--keys", net.keys, "--receipt", rc}, witnessFlagsFor(2, "3000", "3001")...), doc)...); v.code != 0 {
		t.Fatalf("verify of the stamp made during the flood:\n%v", v)
	}
	var after float64
	var by map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		after, by = gossipRejected(t, base)
		if after > before || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after <= before {
		t.Fatalf("tsnode_gossip_rejected_total did not move (%v) under a flood of 240 bad messages", after)
	}
	// The first message is oversized; after a few rejections the
	// flooder is graylisted and its messages are no longer validated.
	if by["size"] == 0 || by["malformed"] == 0 {
		t.Errorf("rejected by reason %v: want the oversized first message and garbage counted", by)
	}
	t.Logf("rejected: %v (of 240 sent; a flooder scored down is graylisted)", by)
	// It is still up and still ready: a flood is no equivocation.
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("the flooded witness is not ready: %d %s", code, body)
	}
	if v := metricValue(t, base, `tsnode_cosigned_total{authority="server"}`); v < 1 {
		t.Errorf("tsnode_cosigned_total{authority=\"server\"} %v after a witnessed stamp", v)
	}
}

func containsPeer(ps []peer.ID, p peer.ID) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// TestWitnessReadyzStaleAuthority: an authority that stops publishing
// (its server process stopped with SIGSTOP) makes the witness's /readyz
// fail once its latest head is older than the stale bound, and ready
// again when heads come back. The bound is Heartbeat + tolerance + 10 s
// by default and tsnode has no flag for it, so the witness runs in this
// process with WitnessOptions.StaleAfter of 4 s, behind the same
// --metrics endpoint the witness role serves; the server is a process.
func TestWitnessReadyzStaleAuthority(t *testing.T) {
	t.Parallel()
	const staleAfter = 4 * time.Second
	keys, pass := keysDir(t, witnessKeys...)
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	id, err := loadIdentity(keys, "3000", pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := protocol.NewTrust(id.Dir, nil, "server")
	if err != nil {
		t.Fatal(err)
	}
	wm := metrics.NewWitness(metrics.New())
	svc, err := node.StartWitness(id, []string{"/ip4/127.0.0.1/tcp/0"}, node.WitnessOptions{Trust: trust,
		Servers: []string{server.addrs["tcp"]}, DataDir: t.TempDir(), StaleAfter: staleAfter, Metrics: wm})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ep, err := listenMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ep.close()
	ep.serve(wm.Registry, svc, "witness", io.Discard)
	readyz := "http://" + ep.e.Addr() + "/readyz"

	// The server keeps publishing while its log grows: stamps every
	// second, for longer than the stale bound.
	stamp := func(i int) {
		doc := writeFile(t, filepath.Join(t.TempDir(), "doc"), fmt.Sprintf("doc %d\n", i))
		if res := tsnode(t, nil, "stamp", "--keys", keys, "--passphrase-file", pass, "--server", server.addrs["tcp"], "--timeout", "20s", doc); res.code != 0 {
			t.Fatalf("stamp:\n%v", res)
		}
	}
	stamp(0)
	waitReady := func(want bool, within time.Duration) string {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := httpGet(t, readyz)
			if (code == 200) == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz still %d %q after %v", code, body, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitReady(true, 10*time.Second)
	var lastAsked time.Time // the last head is dated after this
	for i := 1; i <= 6; i++ {
		lastAsked = time.Now()
		stamp(i)
		if code, body := httpGet(t, readyz); code != 200 {
			t.Fatalf("/readyz failed (%d %q) while the authority publishes", code, body)
		}
		time.Sleep(time.Second)
	}
	sendSignal(t, server, syscall.SIGSTOP)
	stoppedAt := time.Now()
	body := waitReady(false, staleAfter+10*time.Second)
	// Stale is measured from the latest head's time, which is after the
	// last stamp was asked for: not before the bound from then.
	if since := time.Since(lastAsked); since < staleAfter {
		t.Errorf("/readyz failed %v after the last stamp was asked for (%v after the server stopped), before the stale bound %v", since, time.Since(stoppedAt), staleAfter)
	}
	if !strings.Contains(body, "authority server stalled") {
		t.Errorf("/readyz says %q, want it to name the stalled authority", body)
	}
	sendSignal(t, server, syscall.SIGCONT)
	stamp(100)
	waitReady(true, 10*time.Second)
}

// TestEvidenceOfEquivocation: two server processes sign with the same
// key over two logs; a witness follows each, the two peered. Each log
// stamps one document: two heads of size 1 with other roots, a fork.
// Both witnesses write the evidence, log an ERROR, fail /readyz; tsnode
// verify --evidence proves it (exit 0) and refuses evidence files that
// are malformed or prove nothing (exit 1, INVALID naming why).
func TestEvidenceOfEquivocation(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000", "3000", "3001")
	s1 := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	s2 := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	w1 := startWitnessProc(t, keys, pass, "3000", filepath.Join(t.TempDir(), "w"), s1.addrs["tcp"], nil, "--metrics", "127.0.0.1:0")
	w2 := startWitnessProc(t, keys, pass, "3001", filepath.Join(t.TempDir(), "w"), s2.addrs["tcp"], []string{w1.addrs["tcp"]}, "--metrics", "127.0.0.1:0")
	for i, s := range []*daemon{s1, s2} {
		doc := writeFile(t, filepath.Join(t.TempDir(), "doc"), fmt.Sprintf("the view of server process %d\n", i))
		if res := tsnode(t, nil, "stamp", "--keys", keys, "--passphrase-file", pass, "--server", s.addrs["tcp"], doc); res.code != 0 {
			t.Fatalf("stamp on server process %d:\n%v", i, res)
		}
	}
	var evidence string
	for _, w := range []*wnode{w1, w2} {
		path := filepath.Join(w.data, "evidence", "server.evidence.json")
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(path); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("witness %s wrote no evidence within 30 s\n%s", w.id, w.output())
			}
			time.Sleep(100 * time.Millisecond)
		}
		waitOutput(t, w.daemon, "equivocation", 1)
		if !hasLine(w.output(), "ERROR", "equivocation") {
			t.Errorf("witness %s logged no ERROR line about the equivocation\n%s", w.id, w.output())
		}
		base := witnessMetricsBase(t, w.daemon)
		if code, body := httpGet(t, base+"/readyz"); code == 200 || !strings.Contains(body, "equivocated") {
			t.Errorf("witness %s /readyz: %d %q, want a failure naming the equivocation", w.id, code, body)
		}
		if v := metricValue(t, base, `tsnode_equivocations_total{authority="server"}`); v != 1 {
			t.Errorf("witness %s: tsnode_equivocations_total %v, want 1", w.id, v)
		}
		res := tsnode(t, nil, "verify", "--keys", keys, "--evidence", path)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "VALID") || !strings.Contains(res.stdout, "server equivocated (fork)") {
			t.Fatalf("verify --evidence of %s's evidence:\n%v", w.id, res)
		}
		evidence = path
	}
	// A restarted witness still holds the evidence, and says so.
	w1.stop(t)
	w1.restart(t, keys, pass)
	waitOutput(t, w1.daemon, "evidence already held", 1)

	raw, err := os.ReadFile(evidence)
	if err != nil {
		t.Fatal(err)
	}
	var good map[string]any
	if err := json.Unmarshal(raw, &good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		f(m)
		b, _ := json.MarshalIndent(m, "", "  ")
		return string(b)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		args          []string
		want          string
	}{
		{"not JSON", "this is not JSON\n", nil, "malformed evidence: invalid character"},
		{"empty", "", nil, "malformed evidence"},
		{"unknown member", edit(func(m map[string]any) { m["extra"] = 1 }), nil, `unknown member "extra"`},
		{"miscased member", edit(func(m map[string]any) { m["Kind"] = m["kind"]; delete(m, "kind") }), nil, `"Kind"`},
		{"missing second", edit(func(m map[string]any) { delete(m, "second") }), nil, `member "second" is missing`},
		{"missing kind", edit(func(m map[string]any) { delete(m, "kind") }), nil, `member "kind" is missing`},
		{"kind not proven", edit(func(m map[string]any) { m["kind"] = protocol.EquivocationRollback }), nil, `the heads prove "fork"`},
		{"two identical heads", edit(func(m map[string]any) { m["second"] = m["first"] }), nil, "no equivocation proven: two heads of size 1 with the same root"},
		{"wrong format", edit(func(m map[string]any) { m["format"] = "tsnode-evidence-v9" }), nil, `format "tsnode-evidence-v9"`},
		{"changed root", edit(func(m map[string]any) {
			h := m["second"].(map[string]any)
			h["root_hash"] = strings.Repeat("0", len(h["root_hash"].(string)))
		}), nil, "second.root_hash"},
		{"untrusted signer", string(raw), []string{"--trust", "1000"}, "untrusted signer: server is not a trusted authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json"), tc.content)
			res := tsnode(t, nil, append(append([]string{"verify", "--keys", keys}, tc.args...), "--evidence", path)...)
			if res.code != exitFailed || !strings.Contains(res.stdout, "INVALID") || !strings.Contains(strings.ReplaceAll(res.stdout, path, "F"), tc.want) {
				t.Errorf("want exit %d, INVALID and %q\n%v", exitFailed, tc.want, res)
			}
			if !strings.Contains(res.stdout, path) {
				t.Errorf("the verdict does not name the file %s\n%v", path, res)
			}
		})
	}
	// No file at all is not an invalid proof but an error.
	res := tsnode(t, nil, "verify", "--keys", keys, "--evidence", filepath.Join(dir, "absent.json"))
	if res.code != exitFailed || strings.Contains(res.stdout, "VALID") {
		t.Errorf("verify --evidence of an absent file:\n%v", res)
	}
}

// hasLine reports whether one line of out holds all of want.
func hasLine(out string, want ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}
