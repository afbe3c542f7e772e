package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tsnode/tsnode/protocol"
)

// TSAGranted is the outcome of an RFC 3161 request answered with a
// token; a refusal's is its failure info's name (badAlg, ...).
const TSAGranted = "granted"

// Renewal results of the RFC 3161 certificates.
const (
	TSARenewed       = "renewed"
	TSARenewalFailed = "failed"
)

// tsaOutcomes and tsaVias are pre-set to 0, so that a scrape shows
// every outcome of every transport.
var (
	tsaOutcomes = []string{
		TSAGranted, protocol.TSABadAlg.String(), protocol.TSABadRequest.String(), protocol.TSABadDataFormat.String(),
		protocol.TSATimeNotAvailable.String(), protocol.TSAUnacceptedPolicy.String(),
		protocol.TSAUnacceptedExtension.String(), protocol.TSASystemFailure.String(),
	}
	tsaVias = []string{protocol.TSAViaHTTP, protocol.TSAViaLibp2p}
)

// TSA is the metrics of a server's RFC 3161 authority (tsa.Metrics).
type TSA struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	notAfter prometheus.Gauge
	renewals *prometheus.CounterVec
}

// NewTSA adds the RFC 3161 authority's metrics to r.
func NewTSA(r *Registry) *TSA {
	t := &TSA{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "rfc3161_requests_total",
			Help: "RFC 3161 requests answered, by transport (http, libp2p) and outcome: granted, or the failure info of the refusal (badAlg, badRequest, badDataFormat, timeNotAvailable, unacceptedPolicy, unacceptedExtension, systemFailure)."},
			[]string{"via", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "rfc3161_request_seconds",
			Help: "Time from an RFC 3161 request read to its answer ready (a granted token's leaf durable in the log included), by transport.", Buckets: secondsBuckets},
			[]string{"via"}),
		notAfter: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "rfc3161_signing_cert_not_after_timestamp_seconds",
			Help: "End (notAfter, Unix seconds) of the RFC 3161 signing certificate that new tokens get; the server renews it before it ends, so alert when it comes near."}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "rfc3161_cert_renewals_total",
			Help: "Renewals of the RFC 3161 certificates while running, by result: renewed, or failed (retried; the old certificate stays in use)."},
			[]string{"result"}),
	}
	for _, via := range tsaVias {
		for _, o := range tsaOutcomes {
			t.requests.WithLabelValues(via, o)
		}
		t.latency.WithLabelValues(via)
	}
	for _, res := range []string{TSARenewed, TSARenewalFailed} {
		t.renewals.WithLabelValues(res)
	}
	r.reg.MustRegister(t.requests, t.latency, t.notAfter, t.renewals)
	return t
}

// Answered counts one TimeStampResp sent (tsa.Metrics).
func (t *TSA) Answered(via, outcome string, d time.Duration) {
	t.requests.WithLabelValues(via, outcome).Inc()
	t.latency.WithLabelValues(via).Observe(d.Seconds())
}

// SigningCertificate sets the signing certificate's end (tsa.Metrics).
func (t *TSA) SigningCertificate(notAfter time.Time) {
	t.notAfter.Set(float64(notAfter.Unix()))
}

// Renewal counts one renewal while running (tsa.Metrics).
func (t *TSA) Renewal(ok bool) {
	if ok {
		t.renewals.WithLabelValues(TSARenewed).Inc()
	} else {
		t.renewals.WithLabelValues(TSARenewalFailed).Inc()
	}
}
