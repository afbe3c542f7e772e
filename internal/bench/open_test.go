package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node"
)

func TestFixedSchedule(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		gap  time.Duration
	}{{1000, time.Millisecond}, {8000, 125 * time.Microsecond}, {0.5, 2 * time.Second}} {
		s, err := newSchedule(ScheduleFixed, tc.rate, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 100_000 {
			if got, want := s.next(), time.Duration(i)*tc.gap; got != want {
				t.Fatalf("rate %g: request %d at %v, want %v", tc.rate, i, got, want)
			}
		}
	}
}

func TestPoissonSchedule(t *testing.T) {
	const rate, n = 5000.0, 200_000
	draw := func(seed uint64) []time.Duration {
		s, err := newSchedule(SchedulePoisson, rate, seed)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = s.next()
		}
		return out
	}
	at := draw(7)
	if at[0] != 0 {
		t.Errorf("first request at %v, want 0", at[0])
	}
	var sum, sumSq float64
	for i := 1; i < n; i++ {
		gap := (at[i] - at[i-1]).Seconds()
		if gap < 0 {
			t.Fatalf("request %d before request %d", i, i-1)
		}
		sum += gap
		sumSq += gap * gap
	}
	mean := sum / (n - 1)
	sd := math.Sqrt(sumSq/(n-1) - mean*mean)
	// Exponential gaps: mean 1/rate, standard deviation 1/rate. Over
	// 200,000 gaps the sample mean is within 1% (4.5 standard errors).
	if want := 1 / rate; math.Abs(mean-want) > 0.01*want {
		t.Errorf("mean gap %.3g s, want %.3g s ± 1%%", mean, want)
	}
	if math.Abs(sd/mean-1) > 0.02 {
		t.Errorf("gaps: standard deviation / mean = %.3f, want 1 ± 0.02 (exponential)", sd/mean)
	}
	if !reflect.DeepEqual(at, draw(7)) {
		t.Error("the same seed gave another schedule")
	}
	if reflect.DeepEqual(at[:100], draw(8)[:100]) {
		t.Error("another seed gave the same schedule")
	}
	if _, err := newSchedule("bursty", rate, 0); err == nil {
		t.Error("unknown schedule accepted")
	}
	if _, err := newSchedule(ScheduleFixed, 0, 0); err == nil {
		t.Error("rate 0 accepted")
	}
}

// fakeRunner runs the open loop over n fake stampers, without a server.
func fakeRunner(cfg Config) (*runner, *tally) {
	cfg.IDs = []identity.ID{"1000"}
	cfg.Reverify = -1
	cfg.Defaults()
	r := &runner{cfg: &cfg}
	return r, newTally(r.cfg, nil, nil)
}

// A stall shows in the open loop's latencies: every stamp blocks until
// the last of 100 requests (1 ms apart) is sent, so the first one waited
// at least 99 ms from its scheduled time, and the mean is at least
// 49.5 ms. Measured from the send, a stall would hide in the requests
// that were never sent. (Lower bounds only: a slow machine only adds.)
func TestOpenLoopLatencyFromSchedule(t *testing.T) {
	r, tl := fakeRunner(Config{Rate: 1000, Schedule: ScheduleFixed, Count: 100, Duration: time.Minute})
	gate := make(chan struct{})
	var calls atomic.Int64
	perStamper := make([]atomic.Int64, 4)
	var stampers []stampFunc
	for i := range perStamper {
		stampers = append(stampers, func(ctx context.Context, hash []byte) (stamped, error) {
			perStamper[i].Add(1)
			if calls.Add(1) == 100 {
				close(gate)
			}
			select {
			case <-gate:
				return stamped{}, nil
			case <-ctx.Done():
				return stamped{}, ctx.Err()
			}
		})
	}
	res := &FlowResult{}
	if err := r.openLoop(t.Context(), FlowSession, res, stampers, time.Minute, tl); err != nil {
		t.Fatal(err)
	}
	o := res.Open
	if res.Stamps != 100 || res.Errors != 0 || o.Scheduled != 100 || o.Sent != 100 || o.Dropped != 0 {
		t.Fatalf("%d stamps, %d errors, open loop %+v", res.Stamps, res.Errors, o)
	}
	if res.Latency.Max < 99 || res.Latency.Mean < 49.5 {
		t.Errorf("latency %+v: want max ≥ 99 ms and mean ≥ 49.5 ms (measured from the schedule)", res.Latency)
	}
	for i := range perStamper {
		if n := perStamper[i].Load(); n != 25 {
			t.Errorf("stamper %d got %d requests, want 25 (round robin)", i, n)
		}
	}
	if res.Offered == nil || *res.Offered != 1000 || o.PeakOutstanding != 100 {
		t.Errorf("offered %v, peak outstanding %d", res.Offered, o.PeakOutstanding)
	}
}

// Requests scheduled while MaxOutstanding are unanswered are dropped and
// counted, not sent later.
func TestOpenLoopDrops(t *testing.T) {
	r, tl := fakeRunner(Config{Rate: 10_000, Schedule: ScheduleFixed, Count: 100, MaxOutstanding: 10, Duration: time.Minute})
	gate := make(chan struct{})
	r.scheduleEnd = func() { close(gate) }
	stamp := func(ctx context.Context, hash []byte) (stamped, error) {
		<-gate
		return stamped{}, nil
	}
	res := &FlowResult{}
	if err := r.openLoop(t.Context(), FlowOneShot, res, []stampFunc{stamp}, time.Minute, tl); err != nil {
		t.Fatal(err)
	}
	o := res.Open
	if res.Stamps != 10 || o.Scheduled != 100 || o.Sent != 10 || o.Dropped != 90 || o.PeakOutstanding != 10 {
		t.Fatalf("%d stamps, open loop %+v; want 10 sent and stamped, 90 dropped", res.Stamps, o)
	}
	var tab bytes.Buffer
	rep := &Report{Mode: "open", Server: "spawned", Flows: []*FlowResult{res}}
	res.Flow = FlowOneShot
	_ = rep.WriteTable(&tab)
	for _, want := range []string{"offered/s", "dropped", "90 dropped (max outstanding 10 reached)", "from each request's scheduled time"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

// The error budget and ctx end the open loop; the duration bounds it.
func TestOpenLoopBounds(t *testing.T) {
	r, tl := fakeRunner(Config{Rate: 1000, Schedule: ScheduleFixed, MaxErrors: 5, Duration: time.Minute})
	fail := func(ctx context.Context, hash []byte) (stamped, error) { return stamped{}, context.DeadlineExceeded }
	res := &FlowResult{}
	if err := r.openLoop(t.Context(), FlowSession, res, []stampFunc{fail}, time.Minute, tl); err != nil {
		t.Fatal(err)
	}
	if res.Errors < 6 || res.Open.Sent > 1000 {
		t.Errorf("%d errors, %d sent: want the loop ended after 6 errors", res.Errors, res.Open.Sent)
	}

	r, tl = fakeRunner(Config{Rate: 1000, Schedule: ScheduleFixed, Duration: 50 * time.Millisecond})
	ok := func(ctx context.Context, hash []byte) (stamped, error) { return stamped{}, nil }
	res = &FlowResult{}
	if err := r.openLoop(t.Context(), FlowSession, res, []stampFunc{ok}, 50*time.Millisecond, tl); err != nil {
		t.Fatal(err)
	}
	if res.Open.Scheduled != 50 || res.Stamps != 50 {
		t.Errorf("50 ms at 1000/s: %d scheduled, %d stamps; want 50", res.Open.Scheduled, res.Stamps)
	}

	ctx, cancel := context.WithCancel(t.Context())
	r, tl = fakeRunner(Config{Rate: 1000, Schedule: ScheduleFixed, Duration: time.Minute})
	var once sync.Once
	stop := func(ctx context.Context, hash []byte) (stamped, error) { once.Do(cancel); return stamped{}, nil }
	if err := r.openLoop(ctx, FlowSession, &FlowResult{}, []stampFunc{stop}, time.Minute, tl); err == nil {
		t.Error("cancelled run: no error")
	}
}

// A short open-loop run of both flows against a spawned server.
func TestRunOpenLoop(t *testing.T) {
	cfg := testConfig(t)
	cfg.Rate, cfg.Count = 200, 60
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "open" || len(rep.Flows) != 2 || rep.ServerBin != cfg.ServerExe {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range rep.Flows {
		checkFlow(t, f, 60)
		o := f.Open
		if o == nil || o.Scheduled != 60 || o.Sent != 60 || o.Dropped != 0 || o.Schedule != SchedulePoisson || o.MaxOutstanding != DefaultMaxOutstanding {
			t.Errorf("%s: open loop %+v", f.Flow, o)
		}
		if f.Offered == nil || *f.Offered != 200 || f.InFlight != 0 {
			t.Errorf("%s: offered %v, in flight %d", f.Flow, f.Offered, f.InFlight)
		}
		if f.ServerCPUPerStamp == nil || *f.ServerCPUPerStamp < 0 {
			t.Errorf("%s: server CPU per stamp %v", f.Flow, f.ServerCPUPerStamp)
		}
	}
	var back Report
	if err := json.Unmarshal(rep.JSON(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, rep) {
		t.Errorf("JSON round trip differs:\n%s", rep.JSON())
	}
	for _, key := range []string{`"mode": "open"`, `"offered_per_second": 200`, `"server_cpu_us_per_stamp"`, `"dropped": 0`, `"late"`} {
		if !bytes.Contains(rep.JSON(), []byte(key)) {
			t.Errorf("JSON lacks %s:\n%s", key, rep.JSON())
		}
	}
	var tab bytes.Buffer
	_ = rep.WriteTable(&tab)
	for _, want := range []string{"offered/s", "CPU µs/stamp", "session: open loop, 200/s offered (poisson, seed 0)"} {
		if !strings.Contains(tab.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tab.String())
		}
	}
}

// --server-pid measures a server the bench did not start: here the test
// process itself runs it.
func TestRunServerPID(t *testing.T) {
	cfg := testConfig(t)
	svc := startInProcessServer(t)
	cfg.ServerAddr = node.FullAddrs(svc.Host)[0].String()
	cfg.ServerPID = os.Getpid()
	cfg.Flows = []string{FlowSession}
	cfg.Count = 20
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Flows[0]
	checkFlow(t, f, 20)
	if f.ServerCPU == nil || f.ServerCPUPerStamp == nil || f.ServerPeakRSS == nil || rep.ServerPID != os.Getpid() {
		t.Errorf("server CPU %v, per stamp %v, RSS %v, pid %d: want measured", f.ServerCPU, f.ServerCPUPerStamp, f.ServerPeakRSS, rep.ServerPID)
	}
	var tab bytes.Buffer
	_ = rep.WriteTable(&tab)
	if !strings.Contains(tab.String(), "of process") {
		t.Errorf("table:\n%s", tab.String())
	}

	cfg.ServerPID = math.MaxInt32 // above any pid_max
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Errorf("pid of no process: err = %v", err)
	}
}
