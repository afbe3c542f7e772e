package protocol

import (
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
)

// RetiredKey is an authority key that was replaced by a rotation
// (PROTOCOL.md §1.6): it still vouches for what it signed before
// RetiredAt, and for nothing after.
type RetiredKey struct {
	ID        identity.ID
	PublicKey *rsa.PublicKey
	PeerID    peer.ID
	// RetiredAt and Successor come from the rotation statement the
	// retired key signed: the time of the rotation and the peer ID of
	// the key that replaced it.
	RetiredAt time.Time
	Successor peer.ID
}

// Trust is the set of authorities whose signatures count (PROTOCOL.md
// §10.2): a statement or tree head is accepted only if it names one of
// them and verifies with that authority's current key, or with one of
// its retired keys for what is dated before that key's rotation. Every
// other signer, a requester's or a verifier's key among them, is
// refused, whatever the identity directory holds. Trust is read-only
// after NewTrust, so it is safe for concurrent use.
type Trust struct {
	authorities map[identity.ID]*authority
}

type authority struct {
	current identity.Entry
	retired []RetiredKey
}

// NewTrust trusts the authorities ids, with their current keys from dir
// and the retired keys among retired that belong to them. An id that has
// no key in dir is an error: trusting it could only ever refuse.
func NewTrust(dir *identity.Directory, retired []RetiredKey, ids ...identity.ID) (*Trust, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("no trusted authority given")
	}
	t := &Trust{authorities: map[identity.ID]*authority{}}
	for _, id := range ids {
		e, err := dir.Lookup(id)
		if err != nil {
			return nil, fmt.Errorf("trusted authority %q has no public key in the identity directory", id)
		}
		t.authorities[id] = &authority{current: e}
	}
	for _, k := range retired {
		if a := t.authorities[k.ID]; a != nil {
			a.retired = append(a.retired, k)
		}
	}
	return t, nil
}

// Authorities lists the trusted ids, sorted. A nil Trust trusts no one.
func (t *Trust) Authorities() []identity.ID {
	if t == nil {
		return nil
	}
	ids := make([]identity.ID, 0, len(t.authorities))
	for id := range t.authorities {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Trusts reports whether id is a trusted authority.
func (t *Trust) Trusts(id identity.ID) bool { return t != nil && t.authorities[id] != nil }

// CheckAuthority returns an error unless id is a trusted authority.
func (t *Trust) CheckAuthority(id identity.ID) error {
	if t.Trusts(id) {
		return nil
	}
	var names []string
	for _, a := range t.Authorities() {
		names = append(names, string(a))
	}
	if len(names) == 0 {
		return fmt.Errorf("%w: %s is not a trusted authority (no authority is trusted)", ErrUntrustedSigner, id)
	}
	return fmt.Errorf("%w: %s is not a trusted authority (trusted: %s)", ErrUntrustedSigner, id, strings.Join(names, ", "))
}

// keyFor returns the public key that must have signed something that
// names server (id and peer ID) and is dated at.
func (t *Trust) keyFor(id identity.ID, p peer.ID, at time.Time) (*rsa.PublicKey, error) {
	if err := t.CheckAuthority(id); err != nil {
		return nil, err
	}
	a := t.authorities[id]
	if p == a.current.PeerID {
		return a.current.PublicKey, nil
	}
	for _, k := range a.retired {
		if k.PeerID != p {
			continue
		}
		if !at.Before(k.RetiredAt) {
			return nil, fmt.Errorf("%w: key %s of %s was retired at %s (replaced by %s); this is dated %s",
				ErrRetiredKey, p, id, FormatTime(k.RetiredAt), k.Successor, FormatTime(at))
		}
		return k.PublicKey, nil
	}
	return nil, fmt.Errorf("%w: signed as %s by peer %s, but the trusted key of %s is peer %s", ErrWrongServerKey, id, p, id, a.current.PeerID)
}
