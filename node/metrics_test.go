package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
)

// endpoint serves svc's metrics and readiness on a loopback port, as
// --metrics does, and returns its base URL.
func endpoint(t *testing.T, reg *metrics.Registry, svc *Service) string {
	t.Helper()
	e, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Serve(reg.Gatherer(), svc.Ready())
	t.Cleanup(func() { e.Close() })
	return "http://" + e.Addr()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics into name{label="v",...} → value (counters,
// gauges; a histogram as its _count and _sum).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name + labels(m)
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name+"_count"+labels(m)] = float64(m.Histogram.GetSampleCount())
				out[name+"_sum"+labels(m)] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	if len(m.Label) == 0 {
		return ""
	}
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestMetricsCountWhatWasDone stamps and relays documents in both flows
// and checks that each counter moved by exactly what was done.
func TestMetricsCountWhatWasDone(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000", "2000")
	sm := metrics.NewServer(metrics.New())
	srv, err := StartServerWith(testIdentity(t, "server", dir), []string{LoopbackListen}, t.TempDir(), ServerOptions{Metrics: sm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	vm := metrics.NewVerifier(metrics.New())
	ver, err := StartVerifier(testIdentity(t, "2000", dir), []string{LoopbackListen}, VerifierOptions{Trust: serverTrust(t, dir), Metrics: vm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ver.Close() })
	sURL, vURL := endpoint(t, sm.Registry, srv), endpoint(t, vm.Registry, ver)

	for _, base := range []string{sURL, vURL} {
		if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
			t.Fatalf("%s/healthz: %d %q", base, code, body)
		}
		if code, body := get(t, base+"/readyz"); code != 200 || body != "ok\n" {
			t.Fatalf("%s/readyz: %d %q", base, code, body)
		}
	}
	s0, v0 := scrape(t, sURL), scrape(t, vURL)

	docs := t.TempDir()
	bytes := 0
	run := func(oneShot bool, n int) {
		r, err := NewRequester(testIdentity(t, "1000", dir), RequesterConfig{
			Trust: serverTrust(t, dir), ServerID: "server", ServerAddr: addrOf(srv),
			VerifierID: "2000", VerifierAddr: addrOf(ver), OutDir: t.TempDir(), OneShot: oneShot,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			data := strings.Repeat(fmt.Sprintf("doc %v %d\n", oneShot, i), 100*(i+1))
			bytes += len(data)
			if res := r.Process(ctxT(t), writeDoc(t, docs, fmt.Sprintf("%v-%d", oneShot, i), []byte(data))); !res.OK() {
				t.Fatalf("%v (verdict %v)", res.Err, res.Verdict)
			}
		}
	}
	run(false, 3)
	run(true, 2)
	// A stranger is refused at the connection gater (with TLS 1.3 its own
	// side of the handshake may complete first: only the server knows).
	stranger := testnet.NewHost(t, "outsider", "")
	_ = stranger.Connect(ctxT(t), peer.AddrInfo{ID: srv.Host.ID(), Addrs: srv.Host.Addrs()})

	// The server ends the session after the requester closed it, and
	// counts the stranger once its handshake ends.
	var s1 map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; {
		s1 = scrape(t, sURL)
		if done := s1["tsnode_sessions_open"] == 0 && s1[`tsnode_refusals_total{reason="unknown-peer"}`] > 0; done || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	v1 := scrape(t, vURL)
	delta := func(before, after map[string]float64, key string) float64 {
		if _, ok := after[key]; !ok {
			t.Errorf("no metric %s", key)
		}
		return after[key] - before[key]
	}
	for _, c := range []struct {
		before, after map[string]float64
		key           string
		want          float64
	}{
		{s0, s1, `tsnode_stamps_issued_total{flow="session"}`, 3},
		{s0, s1, `tsnode_stamps_issued_total{flow="oneshot"}`, 2},
		{s0, s1, `tsnode_stamp_latency_seconds_count{flow="session"}`, 3},
		{s0, s1, `tsnode_stamp_latency_seconds_count{flow="oneshot"}`, 2},
		{s0, s1, `tsnode_sessions_opened_total`, 1},
		{s0, s1, `tsnode_sessions_open`, 0},
		{s0, s1, `tsnode_sessions_closed_total{end="closed"}`, 1},
		{s0, s1, `tsnode_sessions_closed_total{end="abandoned"}`, 0},
		{s0, s1, `tsnode_sessions_closed_total{end="violation"}`, 0},
		{s0, s1, `tsnode_log_stamps`, 5},
		{s0, s1, `tsnode_refusals_total{reason="unknown-peer"}`, 1},
		{s0, s1, `tsnode_refusals_total{reason="bad-request"}`, 0},
		{v0, v1, `tsnode_relays_total{outcome="verdict"}`, 5},
		{v0, v1, `tsnode_verdicts_total{code="valid"}`, 5},
		{v0, v1, `tsnode_verdicts_total{code="hash-mismatch"}`, 0},
		{v0, v1, `tsnode_relayed_bytes_total`, float64(bytes)},
		{v0, v1, `tsnode_relay_seconds_count`, 5},
	} {
		if got := delta(c.before, c.after, c.key); got != c.want {
			t.Errorf("%s moved by %v, want %v", c.key, got, c.want)
		}
	}
	// Heads: every session stamp waited for one; each head is observed
	// once in each histogram, and they cover at least the session stamps.
	heads := delta(s0, s1, "tsnode_tree_heads_signed_total")
	if heads < 1 || heads > 5 {
		t.Errorf("%v heads signed for 5 stamps", heads)
	}
	for _, h := range []string{"tsnode_stamps_per_head_count", "tsnode_head_sign_seconds_count", "tsnode_head_save_seconds_count"} {
		if got := delta(s0, s1, h); got != heads {
			t.Errorf("%s moved by %v, want %v (the heads signed)", h, got, heads)
		}
	}
	if covered := delta(s0, s1, "tsnode_stamps_per_head_sum"); covered < 3 || covered > 5 {
		t.Errorf("heads covered %v stamps, want 3 to 5", covered)
	}
	if n := delta(s0, s1, "tsnode_log_append_seconds_count"); n < 1 || n > 5 {
		t.Errorf("%v appends for 5 stamps", n)
	}
	// libp2p's resource manager and the Go runtime are there too.
	for _, name := range []string{`libp2p_rcmgr_streams{dir="inbound",protocol="",scope="system"}`, "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := s1[name]; !ok {
			t.Errorf("no %s in /metrics", name)
		}
	}
}

// TestReadyzSaysWhatIsWrong: a clock behind the last issued time, then a
// closed log, each make /readyz 503 naming the check; /healthz stays 200.
func TestReadyzSaysWhatIsWrong(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	sm := metrics.NewServer(metrics.New())
	srv, err := StartServerWith(testIdentity(t, "server", dir), []string{LoopbackListen}, t.TempDir(),
		ServerOptions{Metrics: sm, Authority: []authority.Option{authority.WithClock(now)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	base := endpoint(t, sm.Registry, srv)
	stampOnce(t, srv, dir)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz after a stamp: %d %q", code, body)
	}

	clock.Add(int64(-time.Hour)) // the clock steps back an hour
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "stamping: authority: the clock is behind") {
		t.Fatalf("/readyz with the clock behind: %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	clock.Add(int64(time.Hour))
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz once the clock caught up: %d %q", code, body)
	}

	srv.log.Close()
	code, body = get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "log: merklelog: log is closed") {
		t.Fatalf("/readyz with the log closed: %d %q", code, body)
	}
	srv.Close()
	if _, body := get(t, base+"/readyz"); !strings.Contains(body, "serving: shutting down") {
		t.Fatalf("/readyz of a closed server: %q", body)
	}
}

// stampOnce stamps one hash in a session as 1000.
func stampOnce(t *testing.T, srv *Service, dir *identity.Directory) {
	t.Helper()
	r, err := NewRequester(testIdentity(t, "1000", dir), RequesterConfig{
		Trust: serverTrust(t, dir), ServerID: "server", ServerAddr: addrOf(srv),
		VerifierID: "server", VerifierAddr: addrOf(srv),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.stampOnce(ctx, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
}
