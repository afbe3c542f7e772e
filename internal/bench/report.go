package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// FlowResult is what one flow measured. In the JSON of an RFC 3161 flow
// the counts say tokens: "tokens", "tokens_per_second",
// "server_cpu_us_per_token".
type FlowResult struct {
	Flow     string `json:"flow"`
	Protocol string `json:"protocol"`
	// TSAURL is where the rfc3161 flow asked for its tokens.
	TSAURL string `json:"tsa_url,omitempty"`
	// Stamps is the number of stamps returned and checked: the reply
	// matched the request and the signature (one-shot) or the leaf,
	// inclusion proof and tree head signature (session) verified. For
	// an RFC 3161 flow, the tokens granted and checked: signature,
	// chain, imprint and nonce.
	Stamps uint64 `json:"stamps"`
	// Reverified is how many of them were verified again as receipts
	// through protocol.Receipt.VerifyCached; of tokens, how many got
	// tsnode's full check (Trust.CheckTSAToken).
	Reverified uint64 `json:"reverified"`
	Errors     uint64 `json:"errors"`
	// FirstError is the first error seen, if any.
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	// PerSecond is the achieved rate: Stamps over Seconds (the open
	// loop's Seconds include waiting for the last answers).
	PerSecond float64 `json:"stamps_per_second"`
	// Offered is the open loop's offered rate; nil in the closed loop.
	Offered *float64 `json:"offered_per_second"`
	// Latency: in the closed loop from each request's send, in the open
	// loop from its scheduled time.
	Latency    Latency `json:"latency"`
	Requesters int     `json:"requesters"`
	Sessions   int     `json:"sessions,omitempty"`
	// TreeHeads is the number of distinct signed tree heads the session
	// flow's stamps came with: the server's batches that reached us.
	TreeHeads     uint64  `json:"tree_heads,omitempty"`
	StampsPerHead float64 `json:"stamps_per_tree_head,omitempty"`
	InFlight      int     `json:"in_flight"`
	// Server CPU seconds (user + system) during the stamping phase, and
	// the server's peak resident set over its life: nil when the server
	// is not ours to measure (--server).
	ServerCPU     *float64 `json:"server_cpu_seconds"`
	ServerPeakRSS *float64 `json:"server_peak_rss_mib"`
	// ServerCPUPerStamp is ServerCPU over Stamps, in microseconds.
	ServerCPUPerStamp *float64 `json:"server_cpu_us_per_stamp"`
	// BenchCPU is the load generator's own CPU seconds during the phase.
	BenchCPU *float64 `json:"bench_cpu_seconds"`
	// Open is what the open loop did: nil in the closed loop.
	Open *OpenLoop `json:"open_loop,omitempty"`
}

// flowJSON is FlowResult without its JSON methods.
type flowJSON FlowResult

// tokenKeys rename the counts of an RFC 3161 flow in its JSON.
var tokenKeys = [][2]string{
	{`"stamps":`, `"tokens":`},
	{`"stamps_per_second":`, `"tokens_per_second":`},
	{`"server_cpu_us_per_stamp":`, `"server_cpu_us_per_token":`},
}

// MarshalJSON writes f, its counts named tokens for an RFC 3161 flow.
// The keys are renamed in the bytes: each is a top-level key that comes
// once, after the flow and protocol, whose strings cannot hold it
// unescaped.
func (f FlowResult) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(flowJSON(f))
	if err != nil || !tokenFlow(f.Flow) {
		return b, err
	}
	for _, k := range tokenKeys {
		b = bytes.Replace(b, []byte(k[0]), []byte(k[1]), 1)
	}
	return b, nil
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (f *FlowResult) UnmarshalJSON(b []byte) error {
	for _, k := range tokenKeys {
		b = bytes.Replace(b, []byte(k[1]), []byte(k[0]), 1)
	}
	return json.Unmarshal(b, (*flowJSON)(f))
}

// Report is the outcome of a run.
type Report struct {
	Server string `json:"server"` // "spawned" or the --server address
	// ServerBin is the binary of the spawned servers; ServerPID the
	// process measured with --server.
	ServerBin string `json:"server_bin,omitempty"`
	ServerPID int    `json:"server_pid,omitempty"`
	CPUs      int    `json:"cpus"`
	// Mode is "closed" (a fixed number in flight) or "open" (a rate).
	Mode string `json:"mode"`
	// The limits of each flow: duration (the one-shot flow's may
	// differ), count (0: none), and which stamps were re-verified as
	// receipts (every Nth; -1: none).
	Duration        float64 `json:"duration_seconds"`
	OneShotDuration float64 `json:"oneshot_duration_seconds"`
	Count           int     `json:"count"`
	ReverifyEvery   int     `json:"reverify_every"`
	// TokenCheck says how the RFC 3161 flows' tokens were checked.
	TokenCheck string        `json:"token_check,omitempty"`
	Flows      []*FlowResult `json:"flows"`
	// Ratio is the session flow's throughput over the one-shot flow's,
	// when both ran.
	Ratio *float64 `json:"session_oneshot_throughput_ratio,omitempty"`
}

// Errors is the total error count of the run.
func (r *Report) Errors() uint64 {
	var n uint64
	for _, f := range r.Flows {
		n += f.Errors
	}
	return n
}

func (r *Report) flow(name string) *FlowResult {
	for _, f := range r.Flows {
		if f.Flow == name {
			return f
		}
	}
	return nil
}

func (r *Report) computeRatio() {
	one, sess := r.flow(FlowOneShot), r.flow(FlowSession)
	if one == nil || sess == nil || one.PerSecond <= 0 {
		r.Ratio = nil
		return
	}
	x := sess.PerSecond / one.PerSecond
	r.Ratio = &x
}

// JSON encodes the report, indented.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ") // plain structs: cannot fail
	return append(b, '\n')
}

// WriteTable prints the report as a table (one for the stamp flows, one
// for the RFC 3161 flows) and the ratio line.
func (r *Report) WriteTable(w io.Writer) error {
	var stamps, tokens []*FlowResult
	for _, f := range r.Flows {
		if tokenFlow(f.Flow) {
			tokens = append(tokens, f)
		} else {
			stamps = append(stamps, f)
		}
	}
	for i, group := range [][]*FlowResult{stamps, tokens} {
		if len(group) == 0 {
			continue
		}
		if i == 1 && len(stamps) > 0 {
			fmt.Fprintln(w)
		}
		if err := r.writeFlows(w, group, unit(group[0].Flow)); err != nil {
			return err
		}
	}
	for _, f := range r.Flows {
		if o := f.Open; o != nil {
			fmt.Fprintf(w, "%s: open loop, %g/s offered (%s, seed %d): %d scheduled, %d sent, %d dropped (max outstanding %d reached), %d sent %.0f ms or more late; at most %d unanswered; latency from each request's scheduled time\n",
				f.Flow, o.Rate, o.Schedule, o.Seed, o.Scheduled, o.Sent, o.Dropped, o.MaxOutstanding, o.Late, o.LateThresholdMS, o.PeakOutstanding)
		}
	}
	for _, f := range r.Flows {
		if f.TreeHeads > 0 {
			fmt.Fprintf(w, "%s: %d signed tree heads, %.1f stamps per head, one head every %.1f ms\n", f.Flow, f.TreeHeads, f.StampsPerHead, 1000*f.Seconds/float64(f.TreeHeads))
		}
	}
	for _, f := range r.Flows {
		if f.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", f.Flow, f.FirstError)
		}
	}
	if r.Server != "spawned" && r.ServerPID != 0 {
		fmt.Fprintf(w, "server CPU and RSS: of process %d, from /proc (peak RSS over its life)\n", r.ServerPID)
	} else if r.Server != "spawned" {
		fmt.Fprintf(w, "server CPU and RSS: n/a (not measured: the server at %s is not ours)\n", r.Server)
	}
	if r.Ratio != nil {
		fmt.Fprintf(w, "session/oneshot throughput ratio: %.1f×\n", *r.Ratio)
	}
	if len(stamps) > 0 {
		if _, err := fmt.Fprintf(w, "every stamp checked (reply, signature, inclusion proof); re-verified as receipts: %s\n", r.reverified(stamps)); err != nil {
			return err
		}
	}
	if len(tokens) > 0 {
		full := ""
		if slices.ContainsFunc(tokens, func(f *FlowResult) bool { return f.Reverified > 0 }) {
			full = "; tsnode's trust rule on " + r.reverified(tokens)
		}
		if _, err := fmt.Fprintf(w, "every token checked: %s%s\n", r.TokenCheck, full); err != nil {
			return err
		}
	}
	return nil
}

// writeFlows prints the table of flows, which count u (stamps or tokens).
func (r *Report) writeFlows(w io.Writer, flows []*FlowResult, u string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	open := r.Mode == "open"
	head := "flow\t" + u + "\terrors\t"
	if open {
		head += "offered/s\tdropped\tlate\t"
	}
	one := strings.TrimSuffix(u, "s")
	fmt.Fprintln(tw, head+u+"/s\tp50 ms\tp95 ms\tp99 ms\tserver CPU s\tCPU µs/"+one+"\tserver peak RSS MiB\tbench CPU s\t")
	for _, f := range flows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t", f.Flow, f.Stamps, f.Errors)
		if open && f.Open != nil {
			fmt.Fprintf(tw, "%.0f\t%d\t%d\t", f.Open.Rate, f.Open.Dropped, f.Open.Late)
		} else if open {
			fmt.Fprint(tw, "\t\t\t")
		}
		fmt.Fprintf(tw, "%.1f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t\n",
			f.PerSecond, f.Latency.P50, f.Latency.P95, f.Latency.P99,
			optional(f.ServerCPU, "%.2f"), optional(f.ServerCPUPerStamp, "%.1f"), optional(f.ServerPeakRSS, "%.1f"), optional(f.BenchCPU, "%.2f"))
	}
	return tw.Flush()
}

func (r *Report) reverified(flows []*FlowResult) string {
	s := ""
	for i, f := range flows {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %d of %d", f.Flow, f.Reverified, f.Stamps)
	}
	return s
}
func optional(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

func ptr(x float64) *float64 { return &x }
