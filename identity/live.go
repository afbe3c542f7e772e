package identity

import (
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Peers is what a service asks of the identity directory: a *Directory,
// fixed for the service's life, or a *Live that a reload replaces.
type Peers interface {
	Lookup(ID) (Entry, error)
	ByPeer(peer.ID) (Entry, error)
	Has(peer.ID) bool
}

// Live is the identity directory a running node uses now. A reload
// (SIGHUP) stores a new one; every service sharing the Live sees it
// from its next lookup on, without locks. A lookup sees one directory
// whole, the old or the new.
type Live struct {
	p atomic.Pointer[Directory]
}

// NewLive starts a Live holding d.
func NewLive(d *Directory) *Live {
	l := &Live{}
	l.p.Store(d)
	return l
}

// Load returns the directory in use now.
func (l *Live) Load() *Directory { return l.p.Load() }

// Store makes d the directory in use and returns the one it replaces.
func (l *Live) Store(d *Directory) (old *Directory) { return l.p.Swap(d) }

func (l *Live) Lookup(id ID) (Entry, error)     { return l.Load().Lookup(id) }
func (l *Live) ByPeer(p peer.ID) (Entry, error) { return l.Load().ByPeer(p) }
func (l *Live) Has(p peer.ID) bool              { return l.Load().Has(p) }
