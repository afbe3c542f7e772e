package node

import (
	"errors"
	"time"

	"github.com/tsnode/tsnode/internal/metrics"
)

// MaxSignerLag is how long stamps may wait without an answer before a
// server reports itself not ready: a head takes a signature (about 10 ms
// for RSA-4096) and an fsync or two, so seconds mean the signer or the
// disk is stuck or far behind.
const MaxSignerLag = 5 * time.Second

var errStopping = errors.New("shutting down")

// Ready is the service's readiness checks (GET /readyz): serving (not
// shutting down) for both roles; for a server also its key, its log open
// and writable, stamping not paused (clock behind, failed appends or
// heads) and the signer keeping up (MaxSignerLag).
func (s *Service) Ready() []metrics.Check {
	checks := []metrics.Check{{Name: "serving", Err: func() error {
		if s.stopping.Load() {
			return errStopping
		}
		return nil
	}}}
	if w := s.Witness(); w != nil {
		// Failing while an authority followed equivocated or stalled.
		checks = append(checks, metrics.Check{Name: "witness", Err: w.Ready})
	}
	if s.Authority == nil {
		return checks
	}
	return append(checks,
		metrics.Check{Name: "key", Err: func() error {
			if s.key == nil {
				return errors.New("no signing key loaded")
			}
			return nil
		}},
		metrics.Check{Name: "log", Err: s.log.Err},
		metrics.Check{Name: "stamping", Err: s.Authority.Err},
		metrics.Check{Name: "signer", Err: func() error { return s.Authority.CheckLag(MaxSignerLag) }},
	)
}

// registerServerGauges adds the gauges read from the server's state.
func (s *Service) registerServerGauges(reg *metrics.Registry) {
	reg.GaugeFunc("log_stamps", "Stamps the log holds (its size).", func() float64 { return float64(s.LogSize()) })
	reg.GaugeFunc("signer_lag_seconds", "How long the stamps waiting have gone without an answer (0: none waits).",
		func() float64 { return s.Authority.Lag().Seconds() })
}
