package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, c := range []struct {
		d    []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2), 51, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 95, 95 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 99.5, 100 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 0.001, 1 * time.Millisecond},
	} {
		if got := Percentile(c.d, c.p); got != c.want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(c.d), c.p, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	if (Summarize(nil) != Latency{}) {
		t.Error("no latencies: want zeros")
	}
	d := make([]time.Duration, 1000)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	l := Summarize(d)
	want := Latency{P50: 500, P95: 950, P99: 990, Max: 1000, Mean: 500.5}
	if l != want {
		t.Errorf("Summarize = %+v, want %+v", l, want)
	}
}

func TestRatio(t *testing.T) {
	r := &Report{Flows: []*FlowResult{{Flow: FlowOneShot, PerSecond: 80}, {Flow: FlowSession, PerSecond: 20000}}}
	r.computeRatio()
	if r.Ratio == nil || *r.Ratio != 250 {
		t.Fatalf("ratio %v, want 250", r.Ratio)
	}
	r.Flows[0].PerSecond = 0
	r.computeRatio()
	if r.Ratio != nil {
		t.Fatal("ratio over a flow with no stamps")
	}
}
