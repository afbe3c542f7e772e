package authority

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// DefaultOnlineKeyLifetime is how long one online key signs heads before
// the next one takes over (PROTOCOL.md §5.6).
const DefaultOnlineKeyLifetime = 24 * time.Hour

// MaxOnlineKeyLifetime keeps a key's window (lifetime, a quarter more of
// overlap, and the backdating) within protocol.MaxDelegationWindow.
const MaxOnlineKeyLifetime = 24 * 24 * time.Hour

// onlineKeyBackdate starts a key's window this long before it is made:
// a head is dated by its batch, a moment before it is signed.
const onlineKeyBackdate = 5 * time.Minute

// WithOnlineKeyLifetime sets how long each online key signs heads; 0
// signs every head with the identity key itself, as before §5.6.
func WithOnlineKeyLifetime(d time.Duration) Option {
	return func(a *Authority) { a.onlineLifetime = min(max(d, 0), MaxOnlineKeyLifetime) }
}

// onlineKeys signs tree heads with a rotating online key that the
// identity key delegates: one RSA signature per key instead of one per
// head. A head dated outside every key's window (the head of a stored
// log, signed at start) is signed by the identity key.
type onlineKeys struct {
	identity crypto.Signer
	self     identity.Entry
	lifetime time.Duration
	now      func() time.Time

	mu        sync.Mutex
	cur, prev *protocol.OnlineKey
	rotateAt  time.Time // when cur hands over to a new key
}

// signHead signs a head's encoding, dated t.
func (o *onlineKeys) signHead(enc []byte, t time.Time) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if now := o.now(); o.cur == nil || !now.Before(o.rotateAt) {
		if err := o.rotate(now); err != nil {
			return nil, err
		}
	}
	for _, k := range []*protocol.OnlineKey{o.cur, o.prev} {
		if k != nil && k.Delegation.Covers(t) {
			return k.SignHead(enc, t)
		}
	}
	return signIdentity(o.identity, enc)
}

// rotate makes the next online key; the current one stays, for heads
// still dated in its window.
func (o *onlineKeys) rotate(now time.Time) error {
	nb := now.Add(-onlineKeyBackdate)
	na := now.Add(o.lifetime + o.lifetime/4)
	k, err := protocol.NewOnlineKey(o.self, nb, na, func(b []byte) ([]byte, error) { return signIdentity(o.identity, b) })
	if err != nil {
		return err
	}
	o.prev, o.cur, o.rotateAt = o.cur, k, now.Add(o.lifetime)
	log.Infow("online key delegated", "key", k.Delegation.Fingerprint(),
		"not_before", protocol.FormatTime(k.Delegation.NotBefore), "not_after", protocol.FormatTime(k.Delegation.NotAfter))
	return nil
}

// current returns the delegation of the key signing now, nil if none yet.
func (o *onlineKeys) current() *protocol.Delegation {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == nil {
		return nil
	}
	return o.cur.Delegation
}

// signIdentity signs b with the identity key (§4.2).
func signIdentity(s crypto.Signer, b []byte) ([]byte, error) {
	digest := sha256.Sum256(b)
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	return sig, nil
}
