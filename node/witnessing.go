package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	lpswarm "github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/node/witness"
	"github.com/tsnode/tsnode/protocol"
)

// DefaultWitnessPort is the witness role's port, on TCP and QUIC.
const DefaultWitnessPort = 7402

// reconnectEvery spaces the tries to reach the servers and peers a node
// was given, so that a partition heals by itself.
const reconnectEvery = 2 * time.Second

// WitnessOptions configure witnessing: the witness role, or a verifier
// that also witnesses.
type WitnessOptions struct {
	// Trust is the authorities followed. Required.
	Trust *protocol.Trust
	// Servers are multiaddrs of the authorities' servers, for the log
	// protocol: /p2p/ names the server; without it, the only authority
	// trusted.
	Servers []string
	// Peers are other witnesses (or any node on the topics), peered
	// directly so that no server is the only path between them.
	Peers []string
	// DataDir holds the witness's state and evidence.
	DataDir string
	// Tolerance bounds a head's distance from the clock (0: the default).
	Tolerance time.Duration
	// StaleAfter: see witness.Config.
	StaleAfter time.Duration
	// MDNS finds peers of the directory on the LAN.
	MDNS bool
	// Metrics, if set, gets the gossip's and the witness's counts.
	Metrics witness.Metrics
}

// gossiping is what a Service runs of the witness topics.
type gossiping struct {
	gossip    *witness.Gossip
	publisher *witness.Publisher // servers
	witness   *witness.Witness   // witnesses
	stop      context.CancelFunc // the reconnect loop
	wg        sync.WaitGroup
	mdns      interface{ Close() error } // --mdns
}

func (g *gossiping) close() {
	if g == nil {
		return
	}
	if g.stop != nil {
		g.stop()
	}
	g.wg.Wait()
	if g.mdns != nil {
		g.mdns.Close()
	}
	if g.witness != nil {
		g.witness.Close()
	}
	if g.publisher != nil {
		g.publisher.Close()
	}
	g.gossip.Close()
}

// StartWitness starts the witness role: a host listening on listen that
// follows and cosigns the heads of the authorities opts.Trust holds.
func StartWitness(id *Identity, listen []string, opts WitnessOptions) (*Service, error) {
	keys := &liveKeys{dir: identity.NewLive(id.Dir), self: id.Self, trust: opts.Trust}
	h, err := newHost(id, access{dir: keys.dir}, listen, nil, id.listenSecurity()...)
	if err != nil {
		return nil, err
	}
	svc := &Service{Host: h, keys: keys}
	if err := svc.StartWitnessing(id, opts); err != nil {
		h.Close()
		return nil, err
	}
	return svc, nil
}

// StartWitnessing makes s a witness too (tsnode --role verifier --cosign):
// it joins the topics of opts.Trust's authorities on s's host, reaches
// their servers and its peers, and cosigns what it checked.
func (s *Service) StartWitnessing(id *Identity, opts WitnessOptions) error {
	if opts.Trust == nil {
		return errors.New("witness: no trust policy (WitnessOptions.Trust)")
	}
	if opts.DataDir == "" {
		return errors.New("witness: no data directory (WitnessOptions.DataDir)")
	}
	servers, err := resolveServers(id, opts.Trust, opts.Servers)
	if err != nil {
		return err
	}
	peers, err := resolvePeers(id, opts.Peers)
	if err != nil {
		return err
	}
	g, err := witness.NewGossip(s.Host, s.keys.dir, opts.Trust, witness.WithMetrics(opts.Metrics))
	if err != nil {
		return err
	}
	logs := map[identity.ID][]*logsync.Client{}
	var dial []peer.AddrInfo
	for _, sv := range servers {
		logs[sv.id] = append(logs[sv.id], logsync.NewClient(s.Host, sv.entry, opts.Trust))
		dial = append(dial, sv.info)
	}
	w, err := witness.New(g, witness.Config{Self: id.Self, Key: id.Key, Trust: opts.Trust, Logs: logs, DataDir: opts.DataDir,
		Tolerance: opts.Tolerance, StaleAfter: opts.StaleAfter})
	if err != nil {
		g.Close()
		return err
	}
	gs := &gossiping{gossip: g, witness: w}
	s.gossip = gs
	gs.keepConnected(s.Host, append(dial, peers...))
	if opts.MDNS {
		if err := gs.startMDNS(s.Host, s.keys.dir); err != nil {
			return err
		}
	}
	return nil
}

// Gossip is the service's gossip router, nil if it runs none.
func (s *Service) Gossip() *witness.Gossip {
	if s.gossip == nil {
		return nil
	}
	return s.gossip.gossip
}

// Witness is the service's witness, nil if it is none.
func (s *Service) Witness() *witness.Witness {
	if s.gossip == nil {
		return nil
	}
	return s.gossip.witness
}

type resolvedServer struct {
	id    identity.ID
	entry identity.Entry
	info  peer.AddrInfo
}

// resolveServers maps each --server multiaddr to the trusted authority it
// reaches: the one its /p2p/ names, or the only one trusted.
func resolveServers(id *Identity, trust *protocol.Trust, addrs []string) ([]resolvedServer, error) {
	var out []resolvedServer
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("--server %q: %w", a, err)
		}
		_, pid := peer.SplitAddr(m)
		var sid identity.ID
		switch {
		case pid != "":
			e, err := id.Dir.ByPeer(pid)
			if err != nil {
				return nil, fmt.Errorf("--server %q: peer %s is not in the identity directory", a, pid)
			}
			sid = e.ID
		case len(trust.Authorities()) == 1:
			sid = trust.Authorities()[0]
		default:
			return nil, fmt.Errorf("--server %q: add /p2p/<peer ID> to say which of the trusted authorities (%v) it is", a, trust.Authorities())
		}
		if err := trust.CheckAuthority(sid); err != nil {
			return nil, fmt.Errorf("--server %q: %w", a, err)
		}
		e, info, err := ResolvePeer(id.Dir, sid, a, id.Retired...)
		if err != nil {
			return nil, fmt.Errorf("--server: %w", err)
		}
		out = append(out, resolvedServer{id: sid, entry: e, info: info})
	}
	for _, a := range trust.Authorities() {
		found := false
		for _, sv := range out {
			found = found || sv.id == a
		}
		if !found {
			return nil, fmt.Errorf("no --server for the trusted authority %s: a witness fetches consistency proofs from its log", a)
		}
	}
	return out, nil
}

// resolvePeers parses --peer multiaddrs, which must name a peer of the
// directory with /p2p/.
func resolvePeers(id *Identity, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("--peer %q: %w", a, err)
		}
		info, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, fmt.Errorf("--peer %q: want a multiaddr ending in /p2p/<peer ID>: %w", a, err)
		}
		if !id.Dir.Has(info.ID) {
			return nil, fmt.Errorf("--peer %q: peer %s is not in the identity directory", a, info.ID)
		}
		out = append(out, *info)
	}
	return out, nil
}

// keepConnected dials each of peers now and again whenever it is not
// connected, until close: a witness cut off from a server or a peer
// rejoins by itself once the network heals.
func (g *gossiping) keepConnected(h host.Host, peers []peer.AddrInfo) {
	if len(peers) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(reconnectEvery)
		defer t.Stop()
		for {
			for _, p := range peers {
				if h.Network().Connectedness(p.ID) == network.Connected {
					continue
				}
				if sw, ok := h.Network().(*lpswarm.Swarm); ok {
					sw.Backoff().Clear(p.ID)
				}
				dctx, dcancel := context.WithTimeout(ctx, reconnectEvery)
				if err := h.Connect(dctx, p); err != nil && ctx.Err() == nil {
					log.Debugw("peer not reached", "peer", p.ID, "err", err)
				}
				dcancel()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}
