package node

import (
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tsnode/tsnode/identity"
)

// directoryGater lets a connection through only when the peer's key is in
// the identity directory: strangers are refused right after the security
// handshake, before any protocol runs.
type directoryGater struct {
	dir     *identity.Directory
	refused func() // counts a refused stranger; may be nil
}

func (g directoryGater) InterceptPeerDial(p peer.ID) bool                 { return g.dir.Has(p) }
func (g directoryGater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.dir.Has(p) }
func (g directoryGater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }

func (g directoryGater) InterceptSecured(_ network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	if !g.dir.Has(p) {
		log.Warnw("refused connection from a peer not in the identity directory", "peer", p, "addr", addrs.RemoteMultiaddr())
		if g.refused != nil {
			g.refused()
		}
		return false
	}
	return true
}

func (g directoryGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
