package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// access is who a host admits: the peers of the identity directory (the
// Live one, so that a reload applies at once), and with publicLog any
// peer, but to the log protocol only.
type access struct {
	dir       *identity.Live
	publicLog bool
}

// directoryGater lets a connection through only when the peer's key is in
// the identity directory: strangers are refused right after the security
// handshake, before any protocol runs. With publicLog, strangers are let
// in, and streamGuard keeps them to the log protocol.
type directoryGater struct {
	access
	refused func() // counts a refused stranger; may be nil
}

func (g directoryGater) InterceptPeerDial(p peer.ID) bool                 { return g.dir.Has(p) }
func (g directoryGater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.dir.Has(p) }
func (g directoryGater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }

func (g directoryGater) InterceptSecured(_ network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	switch {
	case g.dir.Has(p):
		return true
	case g.publicLog:
		log.Debugw("admitted a peer not in the identity directory to the public log", "peer", p, "addr", addrs.RemoteMultiaddr())
		return true
	}
	log.Warnw("refused connection from a peer not in the identity directory", "peer", p, "addr", addrs.RemoteMultiaddr())
	if g.refused != nil {
		g.refused()
	}
	return false
}

func (g directoryGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// allows says whether p may open a stream of proto. A peer outside the
// directory may use libp2p's identify, which every connection runs, and
// with publicLog the log protocol.
func (a access) allows(p peer.ID, proto libp2pprotocol.ID) error {
	if a.dir.Has(p) || proto == identify.ID || proto == identify.IDPush ||
		(a.publicLog && proto == protocol.LogProtocolID) {
		return nil
	}
	if a.publicLog {
		return fmt.Errorf("peer %s is not in the identity directory: it may use the log protocol only", p)
	}
	return fmt.Errorf("peer %s is not in the identity directory", p)
}

// streamGuard refuses, as the protocol of a stream is set, the streams a
// peer outside the directory may not open (access.allows): a stranger
// on a --public-log server, or a peer that a reload removed, whose
// connection is closing. libp2p resets such a stream before its
// handler runs, so a stranger costs the stamp service no RSA operation.
// Resource limits apply to strangers' streams as to any.
type streamGuard struct {
	network.ResourceManager
	access access
}

func (g streamGuard) OpenStream(p peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	s, err := g.ResourceManager.OpenStream(p, dir)
	if err != nil {
		return nil, err
	}
	return guardedStream{StreamManagementScope: s, peer: p, access: g.access}, nil
}

type guardedStream struct {
	network.StreamManagementScope
	peer   peer.ID
	access access
}

func (s guardedStream) SetProtocol(proto libp2pprotocol.ID) error {
	if err := s.access.allows(s.peer, proto); err != nil {
		log.Debugw("stream refused", "protocol", proto, "err", err)
		return err
	}
	return s.StreamManagementScope.SetProtocol(proto)
}
