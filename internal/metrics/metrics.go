// Package metrics defines tsnode's Prometheus metrics and serves them,
// with the health endpoints, over HTTP (--metrics). Each node gets its own
// registry, so that one process (a test) can run several nodes; the
// services see only the narrow hook interfaces they define themselves
// (authority.Metrics, stamp.Metrics, relay.Metrics, tsa.Metrics, ...),
// which *Server, *Verifier, *TSA and *Witness implement.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tsnode/tsnode/protocol"
)

const namespace = "tsnode"

// Refusal reasons: the stamp protocol's statuses, and what refuses before
// a protocol runs.
const (
	RefusedUnknownPeer = "unknown-peer" // the connection gater: not in the identity directory
	RefusedLimits      = "limits"       // the resource manager: a stream, memory or connection over its limit
)

// refusalReasons are pre-set to 0 so that a scrape shows every reason.
var refusalReasons = []string{
	RefusedUnknownPeer, RefusedLimits,
	protocol.StatusBadRequest, protocol.StatusUnknownID, protocol.StatusPeerMismatch,
	protocol.StatusClockBehind, protocol.StatusShuttingDown, protocol.StatusInternal,
}

// Stamp flows.
const (
	FlowSession = "session"
	FlowOneShot = "oneshot"
)

// Relay outcomes: a verdict was sent, the sender went away before one,
// or the sender broke the protocol (reset, no verdict).
const (
	RelayVerdict   = "verdict"
	RelayAbandoned = "abandoned"
	RelayViolation = "violation"
)

// secondsBuckets span 0.5 ms to about 8 s.
var secondsBuckets = prometheus.ExponentialBuckets(0.0005, 2, 15)

// Registry is one node's metrics: Go runtime and process collectors,
// refusals, and what Server or Verifier add.
type Registry struct {
	reg      *prometheus.Registry
	refusals *prometheus.CounterVec
}

// New makes a registry with the Go runtime and process collectors and
// tsnode_refusals_total.
func New() *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := &Registry{reg: reg, refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "refusals_total",
		Help: "Connections, streams and requests refused, by reason.",
	}, []string{"reason"})}
	for _, reason := range refusalReasons {
		r.refusals.WithLabelValues(reason)
	}
	reg.MustRegister(r.refusals)
	return r
}

// Registerer is where libp2p registers its own metrics (the resource
// manager's libp2p_rcmgr_*, the swarm's, ...).
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Gatherer is what /metrics serves.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Refused counts one refusal.
func (r *Registry) Refused(reason string) { r.refusals.WithLabelValues(reason).Inc() }

// GaugeFunc registers a gauge read at each scrape.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f))
}

// Server is the metrics of a timestamp server.
type Server struct {
	*Registry
	stamps        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	heads         prometheus.Counter
	stampsPerHead prometheus.Histogram
	signSeconds   prometheus.Histogram
	appendSeconds prometheus.Histogram
	saveSeconds   prometheus.Histogram
	sessionsOpen  prometheus.Gauge
	sessions      prometheus.Counter
	sessionEnds   *prometheus.CounterVec
}

// Session ends: the requester closed, the stream ended under the read
// (reset, connection lost, network error, idle), a protocol violation,
// or the server's shutdown (stamp.EndClosed, ...).
const (
	SessionEndClosed    = "closed"
	SessionEndAbandoned = "abandoned"
	SessionEndViolation = "violation"
	SessionEndDraining  = "draining"
)

// NewServer adds a server's metrics to r.
func NewServer(r *Registry) *Server {
	s := &Server{
		Registry: r,
		stamps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "stamps_issued_total",
			Help: "Stamps issued (answered with a stamp), by flow: session (v2) or oneshot (v1)."}, []string{"flow"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "stamp_latency_seconds",
			Help: "Time from a stamp request read to its answer ready, by flow.", Buckets: secondsBuckets}, []string{"flow"}),
		heads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "tree_heads_signed_total",
			Help: "Tree heads signed over new stamps."}),
		stampsPerHead: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "stamps_per_head",
			Help: "Stamps a newly signed tree head covers.", Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		signSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "head_sign_seconds",
			Help: "Time to sign one tree head.", Buckets: secondsBuckets}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "log_append_seconds",
			Help: "Time to append one batch of stamps to the log, fsync included.", Buckets: secondsBuckets}),
		saveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "head_save_seconds",
			Help: "Time to guard a tree head's size and root before answering under it (the guard file, fdatasync included).", Buckets: secondsBuckets}),
		sessionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "sessions_open",
			Help: "Stamp sessions open now."}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "sessions_opened_total",
			Help: "Stamp sessions opened (accepted)."}),
		sessionEnds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "sessions_closed_total",
			Help: "Stamp sessions ended, by end: closed (by the requester), abandoned (reset, connection lost, network error, idle), violation or draining."}, []string{"end"}),
	}
	for _, e := range []string{SessionEndClosed, SessionEndAbandoned, SessionEndViolation, SessionEndDraining} {
		s.sessionEnds.WithLabelValues(e)
	}
	for _, f := range []string{FlowSession, FlowOneShot} {
		s.stamps.WithLabelValues(f)
		s.latency.WithLabelValues(f)
	}
	r.reg.MustRegister(s.stamps, s.latency, s.heads, s.stampsPerHead, s.signSeconds, s.appendSeconds,
		s.saveSeconds, s.sessionsOpen, s.sessions, s.sessionEnds)
	return s
}

// Appended records one durable append (authority.Metrics).
func (s *Server) Appended(_ int, d time.Duration) { s.appendSeconds.Observe(d.Seconds()) }

// HeadSigned records a tree head over stamps new stamps (authority.Metrics).
func (s *Server) HeadSigned(stamps int, d time.Duration) {
	s.heads.Inc()
	s.stampsPerHead.Observe(float64(stamps))
	s.signSeconds.Observe(d.Seconds())
}

// HeadSaved records a head saved (authority.Metrics).
func (s *Server) HeadSaved(d time.Duration) { s.saveSeconds.Observe(d.Seconds()) }

// SessionOpened records an accepted session (stamp.Metrics).
func (s *Server) SessionOpened() { s.sessions.Inc(); s.sessionsOpen.Inc() }

// SessionClosed records the end of an accepted session (stamp.Metrics).
func (s *Server) SessionClosed(end string) {
	s.sessionsOpen.Dec()
	s.sessionEnds.WithLabelValues(end).Inc()
}

// Stamped records a stamp issued in flow (stamp.Metrics).
func (s *Server) Stamped(flow string, latency time.Duration) {
	s.stamps.WithLabelValues(flow).Inc()
	s.latency.WithLabelValues(flow).Observe(latency.Seconds())
}

// Verifier is the metrics of a verifier.
type Verifier struct {
	*Registry
	relays   *prometheus.CounterVec
	verdicts *prometheus.CounterVec
	bytes    prometheus.Counter
	seconds  prometheus.Histogram
}

// verdictCodes are pre-set to 0.
var verdictCodes = []string{
	protocol.VerdictValid, protocol.VerdictHashMismatch, protocol.VerdictBadSignature, protocol.VerdictBadProof,
	protocol.VerdictUntrustedSigner, protocol.VerdictRetiredKey, protocol.VerdictWrongServerKey,
	protocol.VerdictMalformedReceipt, protocol.VerdictTruncated, protocol.VerdictBadChunk,
	protocol.VerdictSizeMismatch, protocol.VerdictTooLarge, protocol.VerdictPeerMismatch, protocol.VerdictNotWitnessed, protocol.VerdictInternal,
}

// NewVerifier adds a verifier's metrics to r.
func NewVerifier(r *Registry) *Verifier {
	v := &Verifier{
		Registry: r,
		relays: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "relays_total",
			Help: "Relays received, by outcome: verdict, abandoned (the sender went away) or violation."}, []string{"outcome"}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "verdicts_total",
			Help: "Verdicts sent, by code."}, []string{"code"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "relayed_bytes_total",
			Help: "Document bytes received in relays."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "relay_seconds",
			Help: "Time from a relay's header to its verdict.", Buckets: secondsBuckets}),
	}
	for _, o := range []string{RelayVerdict, RelayAbandoned, RelayViolation} {
		v.relays.WithLabelValues(o)
	}
	for _, c := range verdictCodes {
		v.verdicts.WithLabelValues(c)
	}
	r.reg.MustRegister(v.relays, v.verdicts, v.bytes, v.seconds)
	return v
}

// Relayed records one relay (relay.Metrics): its outcome, the verdict's
// code when one was sent, the document bytes received and its duration.
func (v *Verifier) Relayed(outcome, code string, bytes uint64, d time.Duration) {
	v.relays.WithLabelValues(outcome).Inc()
	if outcome == RelayVerdict {
		v.verdicts.WithLabelValues(code).Inc()
		v.seconds.Observe(d.Seconds())
	}
	v.bytes.Add(float64(bytes))
}
