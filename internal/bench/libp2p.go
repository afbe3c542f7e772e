package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/node"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

// libp2pStampers connects one host per requester to the server at addr
// and returns the flow's stampers: one per requester (one-shot, RFC 3161)
// or per session; closeAll closes the sessions and the hosts.
func (r *runner) libp2pStampers(ctx context.Context, flow, addr string, cache *protocol.HeadCache) (stampers []stampFunc, closeAll func(), err error) {
	cfg := r.cfg
	hosts := make([]host.Host, len(r.reqs))
	var sessions []*stamp.Session
	closeAll = func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}
	_, info, err := node.ResolvePeer(r.dir, cfg.ServerID, addr)
	if err != nil {
		return nil, closeAll, fmt.Errorf("server address: %w", err)
	}
	// One host and one connection per requester.
	for i, id := range r.reqs {
		if hosts[i], err = node.NewHost(id, nil); err != nil {
			return nil, closeAll, err
		}
		cctx, cancel := context.WithTimeout(ctx, node.DefaultConnectTimeout)
		err := hosts[i].Connect(cctx, info)
		cancel()
		if err != nil {
			return nil, closeAll, fmt.Errorf("cannot reach server %s at %v: %w", cfg.ServerID, info.Addrs, err)
		}
	}
	switch flow {
	case FlowRFC3161P2P:
		return r.p2pTokenStampers(hosts, info.ID), closeAll, nil
	case FlowOneShot:
		for i, id := range r.reqs {
			c := &stamp.OneShotClient{Host: hosts[i], Key: id.Key, Self: id.Self, Server: r.server, Trust: r.trust}
			stampers = append(stampers, func(ctx context.Context, hash []byte) (stamped, error) {
				rc, err := c.Stamp(ctx, hash) // checks the reply and its signature
				return stamped{receipt: func() *protocol.Receipt { return rc }}, err
			})
		}
		return stampers, closeAll, nil
	}
	r.progress("[%s] opening %d sessions", flow, cfg.Sessions)
	sessions, err = r.openSessions(ctx, hosts, info, cache)
	if err != nil {
		return nil, closeAll, err
	}
	for _, s := range sessions {
		stampers = append(stampers, func(ctx context.Context, hash []byte) (stamped, error) {
			st, err := s.Stamp(ctx, hash) // checks leaf, proof and tree head signature
			if err != nil {
				return stamped{}, err
			}
			return stamped{receipt: st.Receipt, head: st.Head.Head.Size}, nil
		})
	}
	return stampers, closeAll, nil
}

// openSessions opens cfg.Sessions sessions, spread over the hosts, a few
// at a time (each costs an RSA decryption on both sides).
func (r *runner) openSessions(ctx context.Context, hosts []host.Host, info peer.AddrInfo, cache *protocol.HeadCache) ([]*stamp.Session, error) {
	n := r.cfg.Sessions
	sessions := make([]*stamp.Session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4*runtime.NumCPU())
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			j := i % len(hosts)
			id := r.reqs[j]
			sessions[i], errs[i] = stamp.OpenSession(ctx, hosts[j], id.Key, id.Self, r.server, r.trust, cache)
		})
	}
	wg.Wait()
	opened := 0
	for _, s := range sessions {
		if s != nil {
			opened++
		}
	}
	for _, err := range errs {
		if err != nil {
			return sessions, fmt.Errorf("opened %d of %d sessions (%d per requester); the server refused the others: %w", opened, n, (n+len(hosts)-1)/len(hosts), err)
		}
	}
	return sessions, nil
}
