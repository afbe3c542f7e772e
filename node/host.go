// Package node runs tsnode's roles on a libp2p host whose identity is the
// node's RSA-4096 key.
package node

import (
	"crypto/rsa"
	"fmt"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/protocol"
)

var log = logging.Logger("tsnode/node")

// Defaults shared by the roles, the CLI and the load generator, defined
// once.
const (
	// Default ports of the server and the verifier, on TCP and QUIC.
	DefaultServerPort   = 7400
	DefaultVerifierPort = 7401
	// DefaultKeysDir holds private/<id>.pem and public/*.pem.
	DefaultKeysDir = "./keys"
	// DefaultDataDir holds the server's log.
	DefaultDataDir = "./tsnode-data"
	// DefaultConnectTimeout bounds dialing a peer.
	DefaultConnectTimeout = 30 * time.Second
	// LoopbackListen is a TCP listen address on loopback, any port.
	LoopbackListen = "/ip4/127.0.0.1/tcp/0"
)

// DefaultListenAddrs covers TCP and QUIC on every IPv4 and IPv6 address.
func DefaultListenAddrs(port int) []string {
	return []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port),
		fmt.Sprintf("/ip6/::/tcp/%d", port),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", port),
	}
}

// Identity is what a node knows: its own id and private key, and the
// directory of everyone's public keys.
type Identity struct {
	Self identity.Entry
	Key  *rsa.PrivateKey
	Dir  *identity.Directory
	// Retired are the keys rotations replaced (protocol.LoadRetiredKeys),
	// so that an address naming one is explained.
	Retired []protocol.RetiredKey
	// ListenSecurity is what StartServer and StartVerifier offer, in
	// preference order (SecurityTLS, SecurityNoise); nil: TLS only.
	ListenSecurity []string
	// PublicLog admits peers outside the directory to the log protocol,
	// and to nothing else (StartServer: --public-log).
	PublicLog bool
	// hostKey, when set, is the libp2p identity instead of Key: an
	// auditor's ephemeral key (EphemeralIdentity).
	hostKey ic.PrivKey
}

// NewIdentity checks that key is the key the directory holds for id.
func NewIdentity(id identity.ID, key *rsa.PrivateKey, dir *identity.Directory) (*Identity, error) {
	self, err := dir.Lookup(id)
	if err != nil {
		return nil, err
	}
	if !self.PublicKey.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("the private key of %q does not match its public key in the identity directory", id)
	}
	return &Identity{Self: self, Key: key, Dir: dir}, nil
}

// NewHost starts a libp2p host with the node's key as its identity,
// listening on listen (none: dial only), over TCP and QUIC, admitting only
// peers of the directory. It offers security (SecurityTLS, SecurityNoise)
// in that order; none given: TLS then Noise, what a dialing client offers
// so that it reaches servers configured either way. Every listen address
// must be free: a taken one is an error naming it.
func NewHost(id *Identity, listen []string, security ...string) (host.Host, error) {
	return newHost(id, access{dir: identity.NewLive(id.Dir), publicLog: id.PublicLog}, listen, nil, security...)
}

// newHost is NewHost admitting the peers of acc, whose directory a
// service may reload, and reporting libp2p's metrics and the refusals of
// the gater and the resource manager to reg (nil: no metrics).
func newHost(id *Identity, acc access, listen []string, reg *metrics.Registry, security ...string) (host.Host, error) {
	priv, err := id.libp2pKey()
	if err != nil {
		return nil, err
	}
	addrs := make([]ma.Multiaddr, 0, len(listen))
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bad listen address %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	secOpts, err := securityOptions(security)
	if err != nil {
		return nil, err
	}
	gater := directoryGater{access: acc}
	rmOpts := []rcmgr.Option{rcmgr.WithMetricsDisabled()}
	metricsOpt := libp2p.DisableMetrics()
	if reg != nil {
		gater.refused = func() { reg.Refused(metrics.RefusedUnknownPeer) }
		rmOpts = []rcmgr.Option{rcmgr.WithMetrics(reg.LimitsReporter())}
		metricsOpt = libp2p.PrometheusRegisterer(reg.Registerer())
	}
	rm, err := newResourceManager(rmOpts...)
	if err != nil {
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.ResourceManager(streamGuard{ResourceManager: rm, access: acc}),
		libp2p.ConnectionGater(gater),
		metricsOpt,
		// Without SO_REUSEPORT, a second server on a taken TCP port fails
		// instead of splitting clients between two logs. QUIC's UDP
		// sockets never set it. Dialing from the listen port (hole
		// punching) is not needed: tsnode runs no NAT traversal.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.DisableRelay(),
		// Listening happens below, one address at a time: libp2p itself
		// starts when at least one of them works.
		libp2p.NoListenAddrs,
	}
	h, err := libp2p.New(append(opts, secOpts...)...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("failed to start libp2p host: %w", err)
	}
	hl := &hostWithLimits{Host: h, rm: rm}
	if err := listenAll(h, addrs); err != nil {
		hl.Close()
		return nil, err
	}
	return hl, nil
}

// hostWithLimits closes the resource manager it was given with the host:
// libp2p closes only those it made itself.
type hostWithLimits struct {
	host.Host
	rm network.ResourceManager
}

func (h *hostWithLimits) Close() error {
	err := h.Host.Close()
	h.rm.Close()
	return err
}

// FullAddrs returns h's listen addresses with /p2p/<peer ID> appended.
func FullAddrs(h host.Host) []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// ResolvePeer turns a multiaddr, with or without /p2p/, into the address
// of the directory's id. A /p2p/ peer ID that is not id's is refused; if
// it is one of id's retired keys, the error says when it was rotated.
func ResolvePeer(dir *identity.Directory, id identity.ID, addr string, retired ...protocol.RetiredKey) (identity.Entry, peer.AddrInfo, error) {
	e, err := dir.Lookup(id)
	if err != nil {
		return identity.Entry{}, peer.AddrInfo{}, err
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return identity.Entry{}, peer.AddrInfo{}, fmt.Errorf("bad multiaddr %q for %s: %w", addr, id, err)
	}
	transport, pid := peer.SplitAddr(a)
	if pid != "" && pid != e.PeerID {
		if err := rotatedError(id, addr, pid, e.PeerID, retired); err != nil {
			return identity.Entry{}, peer.AddrInfo{}, err
		}
		return identity.Entry{}, peer.AddrInfo{}, fmt.Errorf("multiaddr %q names peer %s, but the identity directory says %s is %s", addr, pid, id, e.PeerID)
	}
	if transport == nil {
		return identity.Entry{}, peer.AddrInfo{}, fmt.Errorf("multiaddr %q for %s has no transport address", addr, id)
	}
	return e, peer.AddrInfo{ID: e.PeerID, Addrs: []ma.Multiaddr{transport}}, nil
}
