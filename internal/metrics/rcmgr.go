package metrics

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// limitsReporter counts what the resource manager refuses as
// tsnode_refusals_total{reason="limits"}; its own gauges (libp2p_rcmgr_*)
// come from rcmgr's StatsTraceReporter.
type limitsReporter struct{ r *Registry }

// LimitsReporter is the rcmgr.WithMetrics reporter of r.
func (r *Registry) LimitsReporter() rcmgr.MetricsReporter { return limitsReporter{r} }

func (l limitsReporter) refused() { l.r.Refused(RefusedLimits) }

func (limitsReporter) AllowConn(network.Direction, bool)        {}
func (l limitsReporter) BlockConn(network.Direction, bool)      { l.refused() }
func (limitsReporter) AllowStream(peer.ID, network.Direction)   {}
func (l limitsReporter) BlockStream(peer.ID, network.Direction) { l.refused() }
func (limitsReporter) AllowPeer(peer.ID)                        {}
func (l limitsReporter) BlockPeer(peer.ID)                      { l.refused() }
func (limitsReporter) AllowProtocol(protocol.ID)                {}
func (l limitsReporter) BlockProtocol(protocol.ID)              { l.refused() }
func (l limitsReporter) BlockProtocolPeer(protocol.ID, peer.ID) { l.refused() }
func (limitsReporter) AllowService(string)                      {}
func (l limitsReporter) BlockService(string)                    { l.refused() }
func (l limitsReporter) BlockServicePeer(string, peer.ID)       { l.refused() }
func (limitsReporter) AllowMemory(int)                          {}
func (l limitsReporter) BlockMemory(int)                        { l.refused() }
