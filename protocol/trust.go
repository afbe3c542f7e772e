package protocol

import (
	"crypto/rsa"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
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
