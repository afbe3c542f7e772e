package node

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"

	"github.com/tsnode/tsnode/identity"
)

// MDNSService is the mDNS service name witnesses announce (--mdns).
const MDNSService = "tsnode-witness"

// mdnsPeers connects to the peers of the directory that mDNS finds on
// the LAN; strangers are ignored (the gater would refuse them anyway).
type mdnsPeers struct {
	h   host.Host
	dir identity.Peers
}

func (m mdnsPeers) HandlePeerFound(p peer.AddrInfo) {
	if p.ID == m.h.ID() || !m.dir.Has(p.ID) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.h.Connect(ctx, p); err != nil {
			log.Debugw("mdns peer not reached", "peer", p.ID, "err", err)
		}
	}()
}

// startMDNS announces h on the LAN and peers with the directory's nodes
// found there, until h closes.
func (g *gossiping) startMDNS(h host.Host, dir identity.Peers) error {
	s := mdns.NewMdnsService(h, MDNSService, mdnsPeers{h: h, dir: dir})
	if err := s.Start(); err != nil {
		return err
	}
	g.mdns = s
	return nil
}
