package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tsnode/tsnode/identity"
)

// Witness is the gossip's and a witness's metrics (witness.Metrics).
type Witness struct {
	*Registry
	rejected      *prometheus.CounterVec
	cosigned      *prometheus.CounterVec
	equivocations *prometheus.CounterVec
}

// gossipRejections are the reasons a topic message is dropped, pre-set
// to 0.
var gossipRejections = []string{"size", "stranger", "malformed", "signature", "topic"}

// NewWitness adds the gossip's and a witness's metrics to r.
func NewWitness(r *Registry) *Witness {
	w := &Witness{
		Registry: r,
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "gossip_rejected_total",
			Help: "Messages of the witness topics dropped before forwarding, by reason: size, stranger (a peer outside the directory), malformed, signature, topic (of another authority)."}, []string{"reason"}),
		cosigned: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "cosigned_total",
			Help: "Tree heads cosigned, by authority."}, []string{"authority"}),
		equivocations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "equivocations_total",
			Help: "Authorities proven to equivocate (evidence held), by authority."}, []string{"authority"}),
	}
	for _, reason := range gossipRejections {
		w.rejected.WithLabelValues(reason)
	}
	r.reg.MustRegister(w.rejected, w.cosigned, w.equivocations)
	return w
}

// Rejected counts a dropped topic message.
func (w *Witness) Rejected(reason string) { w.rejected.WithLabelValues(reason).Inc() }

// Cosigned counts a head of authority cosigned.
func (w *Witness) Cosigned(authority identity.ID) {
	w.cosigned.WithLabelValues(string(authority)).Inc()
}

// Equivocation counts evidence held against authority.
func (w *Witness) Equivocation(authority identity.ID) {
	w.equivocations.WithLabelValues(string(authority)).Inc()
}
