package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/tsnode/tsnode/protocol"
)

// Resource limits of tsnode's own protocols. go-libp2p's defaults suit
// many small protocols shared by many peers; a timestamp server instead
// serves few peers (the identity directory) that each keep many streams
// open: a requester may run dozens of stamp sessions, or a few hundred
// one-shot stamps, at once. The defaults (64 inbound streams and 16 MiB
// per protocol and peer) reset the 65th with no reason given.
const (
	// MaxStreamsPerPeer bounds one peer's inbound streams of one tsnode
	// protocol, and of all protocols together.
	MaxStreamsPerPeer = 512
	// MaxStreamsPerService bounds all peers' inbound streams of one
	// tsnode protocol: 4,096 stamp sessions, say.
	MaxStreamsPerService = 4096
	// Memory the resource manager lets one tsnode protocol reserve, for
	// one peer and in all. Handlers reserve their buffers and largest
	// message per stream (a stamp session about 44 KiB, a relay 130 KiB).
	maxMemoryPerPeer    = 128 << 20
	maxMemoryPerService = 1 << 30
)

var tsnodeProtocols = []struct {
	id      libp2pprotocol.ID
	service string
}{
	{protocol.StampProtocolID, protocol.StampServiceName},
	{protocol.SessionProtocolID, protocol.SessionServiceName},
	{protocol.LogProtocolID, protocol.LogServiceName},
	{protocol.RelayProtocolID, protocol.RelayServiceName},
	{protocol.RFC3161ProtocolID, protocol.RFC3161ServiceName},
}

// newResourceManager returns go-libp2p's default resource manager, scaled
// to the machine, with room for tsnode's protocols.
func newResourceManager(opts ...rcmgr.Option) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	perPeer := rcmgr.BaseLimit{StreamsInbound: MaxStreamsPerPeer, StreamsOutbound: MaxStreamsPerPeer, Streams: 2 * MaxStreamsPerPeer, Memory: maxMemoryPerPeer}
	all := rcmgr.BaseLimit{StreamsInbound: MaxStreamsPerService, StreamsOutbound: MaxStreamsPerService, Streams: 2 * MaxStreamsPerService, Memory: maxMemoryPerService}
	none := rcmgr.BaseLimitIncrease{}
	for _, p := range tsnodeProtocols {
		limits.AddProtocolLimit(p.id, all, none)
		limits.AddProtocolPeerLimit(p.id, perPeer, none)
		limits.AddServiceLimit(p.service, all, none)
		limits.AddServicePeerLimit(p.service, perPeer, none)
	}
	// A peer's streams of every protocol together.
	limits.PeerBaseLimit.StreamsInbound = 2 * MaxStreamsPerPeer
	limits.PeerBaseLimit.Streams = 4 * MaxStreamsPerPeer
	limits.PeerBaseLimit.Memory = 2 * maxMemoryPerPeer
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()), opts...)
	if err != nil {
		return nil, fmt.Errorf("failed to set up libp2p resource limits: %w", err)
	}
	return rm, nil
}
