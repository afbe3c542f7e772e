package node

import (
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/relay"
	"github.com/tsnode/tsnode/protocol"
)

// liveKeys is what a reload replaces in a running server or verifier:
// the directory the gater, the stream guard and the services share and,
// for a verifier, the trust policy of its relay service.
type liveKeys struct {
	mu        sync.Mutex // one reload at a time
	dir       *identity.Live
	self      identity.Entry
	publicLog bool
	relay     *relay.Service  // verifier only
	trust     *protocol.Trust // the relay's policy now; verifier only
}

// Reloaded is what a reload changed.
type Reloaded struct {
	Added, Removed []identity.ID
	// Changed ids kept their name but got another key: their old key's
	// peer is refused, their new one admitted.
	Changed []identity.ID
	// Peers is how many keys the new directory holds, Retired how many
	// retired keys came with it.
	Peers, Retired int
	// ClosedPeers are the peers whose open connections were closed.
	ClosedPeers []peer.ID
}

// ReloadKeys reloads the keys directory keysDir (public/*.pem and
// public/retired/) into the running service: peers added are admitted,
// peers removed are refused from now on and their open connections
// closed; a verifier's trust policy is rebuilt for the same authorities
// from the new keys. A directory that does not load (unreadable, a
// malformed key file, two ids with one key, a bad retired key), that
// lacks this node's own key or holds another key for it, or that has
// no key for a trusted authority, is refused with an error naming the
// cause, and the service keeps the old directory.
func (s *Service) ReloadKeys(keysDir string) (*Reloaded, error) {
	dir, err := identity.LoadDirectory(keysDir)
	if err != nil {
		return nil, refused(err)
	}
	retired, err := protocol.LoadRetiredKeys(keysDir, dir)
	if err != nil {
		return nil, refused(err)
	}
	return s.Reload(dir, retired)
}

func refused(err error) error {
	return fmt.Errorf("reload refused, keeping the old identity directory: %w", err)
}

// Reload is ReloadKeys with the keys already loaded.
func (s *Service) Reload(dir *identity.Directory, retired []protocol.RetiredKey) (*Reloaded, error) {
	k := s.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	// The private key stays the one the process started with: a directory
	// that names another key for this node (a rotation) needs a restart.
	me, err := dir.Lookup(k.self.ID)
	if err != nil {
		return nil, refused(fmt.Errorf("no key for this node %s: %w", k.self.ID, err))
	}
	if me.PeerID != k.self.PeerID {
		return nil, refused(fmt.Errorf("public/%s.pem is now key %s, but this node runs with key %s: restart it to use a rotated key", k.self.ID, me.PeerID, k.self.PeerID))
	}
	var trust *protocol.Trust
	if k.relay != nil {
		if trust, err = protocol.NewTrust(dir, retired, k.trust.Authorities()...); err != nil {
			return nil, refused(err)
		}
	}
	old := k.dir.Store(dir)
	if trust != nil {
		warnAuthorityKeys(old, dir, retired, trust.Authorities())
		k.relay.SetTrust(trust)
		k.trust = trust
	}
	r := diff(old, dir)
	r.Retired = len(retired)
	r.ClosedPeers = s.closeRemoved(old, dir, k.publicLog)
	log.Infow("identity directory reloaded", "peers", r.Peers, "added", r.Added, "removed", r.Removed,
		"changed", r.Changed, "retired_keys", r.Retired, "closed_connections_of", r.ClosedPeers)
	return r, nil
}

// closeRemoved closes the connections of the peers dir no longer holds:
// the removed ones and the old keys of changed ids. A stranger of a
// public log stays. Streams they open meanwhile are refused by the
// stream guard, and a stamp or relay in progress is checked against the
// directory it started with.
func (s *Service) closeRemoved(old, dir *identity.Directory, publicLog bool) []peer.ID {
	closed := []peer.ID{}
	for _, p := range s.Host.Network().Peers() {
		if dir.Has(p) || (publicLog && !old.Has(p)) {
			continue
		}
		if err := s.Host.Network().ClosePeer(p); err != nil {
			log.Warnw("reload: closing the connections of a removed peer failed", "peer", p, "err", err)
		}
		closed = append(closed, p)
	}
	return closed
}

// diff compares two directories by id.
func diff(old, dir *identity.Directory) *Reloaded {
	r := &Reloaded{Added: []identity.ID{}, Removed: []identity.ID{}, Changed: []identity.ID{}}
	for _, e := range dir.Entries() {
		r.Peers++
		was, err := old.Lookup(e.ID)
		switch {
		case err != nil:
			r.Added = append(r.Added, e.ID)
		case was.PeerID != e.PeerID:
			r.Changed = append(r.Changed, e.ID)
		}
	}
	for _, e := range old.Entries() {
		if _, err := dir.Lookup(e.ID); err != nil {
			r.Removed = append(r.Removed, e.ID)
		}
	}
	return r
}

// warnAuthorityKeys says what a trusted authority's new key means for
// the receipts its old key signed. A reload builds the policy a restart
// would: the old key still vouches for what it signed before its
// rotation if public/retired/ holds it with its rotation statement
// (tsnode keygen --rotate), and for nothing otherwise, which is how an
// operator revokes a compromised key.
func warnAuthorityKeys(old, dir *identity.Directory, retired []protocol.RetiredKey, ids []identity.ID) {
	for _, id := range ids {
		was, err := old.Lookup(id)
		now, _ := dir.Lookup(id)
		if err != nil || was.PeerID == now.PeerID {
			continue
		}
		i := slices.IndexFunc(retired, func(k protocol.RetiredKey) bool { return k.ID == id && k.PeerID == was.PeerID })
		if i >= 0 {
			log.Infow("reload: a trusted authority's key was rotated; its old key still vouches for what it signed before the rotation",
				"authority", id, "old_key", was.PeerID, "new_key", now.PeerID, "retired_at", protocol.FormatTime(retired[i].RetiredAt))
			continue
		}
		log.Warnw("reload: a trusted authority's key was replaced without a rotation statement in public/retired/: receipts its old key signed are refused from now on (wrong server key)",
			"authority", id, "old_key", was.PeerID, "new_key", now.PeerID)
	}
}
