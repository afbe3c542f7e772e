package tsa

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

const (
	// DefaultCheckInterval is the longest a running service waits between
	// two checks of its certificates. It wakes at the renewal instant
	// (the signing certificate's end less Config.RenewWithin) in any
	// case; the checks catch a clock that jumped, and files that
	// tsnode tsa cert replaced.
	DefaultCheckInterval = time.Hour
	// renewRetry is how long after a failed renewal (a full disk, a past
	// file that does not parse) it is tried again, unless the check
	// interval is shorter: the old certificate stays in use meanwhile.
	renewRetry = time.Minute
)

// renewer renews a running service's certificates (Service.Renew) at
// the renewal instant of the signing certificate in use.
type renewer struct {
	cfg   *Config
	every time.Duration
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex // one renewal at a time
}

func startRenewer(s *Service, cfg *Config, every time.Duration) *renewer {
	if every <= 0 {
		every = DefaultCheckInterval
	}
	r := &renewer{cfg: cfg, every: every, quit: make(chan struct{}), done: make(chan struct{})}
	go r.run(s)
	return r
}

func (r *renewer) run(s *Service) {
	defer close(r.done)
	failed := false
	for {
		wait := time.Until(s.signing.Load().signer.Cert.NotAfter.Add(-r.cfg.RenewWithin()))
		if failed {
			wait = max(wait, renewRetry)
		}
		wait = max(min(wait, r.every), 0)
		t := time.NewTimer(wait)
		select {
		case <-r.quit:
			t.Stop()
			return
		case <-t.C:
		}
		failed = s.Renew(time.Now()) != nil
	}
}

// stop ends the renewals and waits for one in progress (nil: none run).
func (r *renewer) stop() {
	if r == nil {
		return
	}
	r.once.Do(func() { close(r.quit) })
	<-r.done
}

// Renew checks the certificates as of now and makes those due
// (Config.Ensure: the past file keeps the replaced ones); new tokens are
// signed, and /certchain served, with the new chain from then on. Tokens
// being signed meanwhile finish with the old one. A failure is logged
// and counted, and the old certificates stay in use.
func (s *Service) Renew(now time.Time) error {
	r := s.renewer
	if r == nil {
		return errors.New("tsa: the service was started without Options.Renew")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := s.signing.Load().signer
	k, err := r.cfg.Ensure(now)
	if err != nil {
		s.metrics.Renewal(false)
		log.Errorw("rfc3161 certificates not renewed; the current ones stay in use", "err", err,
			"signing_cert_not_after", protocol.FormatTime(cur.Cert.NotAfter), "retry_in", min(renewRetry, r.every).String())
		return fmt.Errorf("renewing the RFC 3161 certificates: %w", err)
	}
	if k.Cert.Equal(cur.Cert) && k.Root.Equal(cur.Chain[0]) {
		return nil
	}
	s.use(k, cur.Policy, cur.Accuracy)
	s.metrics.Renewal(true)
	log.Infow("rfc3161 signing certificate renewed", "serial", fmt.Sprintf("%x", k.Cert.SerialNumber),
		"not_after", protocol.FormatTime(k.Cert.NotAfter), "previous_not_after", protocol.FormatTime(cur.Cert.NotAfter), "wrote", k.Made)
	return nil
}
