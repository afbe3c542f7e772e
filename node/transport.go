package node

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
)

// Security protocols a host may offer, by the names --security takes.
const (
	SecurityTLS   = "tls"   // /tls/1.0.0
	SecurityNoise = "noise" // /noise
)

// DefaultListenSecurity is what a server or verifier offers unless told
// otherwise: TLS only. Noise signs with the RSA-4096 identity key on every
// handshake, before the connection gater can refuse a stranger, so any
// peer could make the server sign as fast as it dials; TLS signs the
// host's certificate once, at start.
var DefaultListenSecurity = []string{SecurityTLS}

// DialSecurity is what a dialing client offers: TLS first, and Noise so
// that it also reaches servers that offer only Noise.
var DialSecurity = []string{SecurityTLS, SecurityNoise}

// ParseSecurity parses a --security value: tls and noise, comma
// separated, in preference order, each at most once.
func ParseSecurity(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s != SecurityTLS && s != SecurityNoise:
			return nil, fmt.Errorf("unknown security protocol %q: want tls, noise or tls,noise", s)
		case slices.Contains(out, s):
			return nil, fmt.Errorf("security protocol %q given twice", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// listenSecurity is what id's server or verifier offers.
func (id *Identity) listenSecurity() []string {
	if len(id.ListenSecurity) == 0 {
		return DefaultListenSecurity
	}
	return id.ListenSecurity
}

func securityOptions(security []string) ([]libp2p.Option, error) {
	if len(security) == 0 {
		security = DialSecurity
	}
	opts := make([]libp2p.Option, 0, len(security))
	for _, s := range security {
		switch s {
		case SecurityTLS:
			opts = append(opts, libp2p.Security(libp2ptls.ID, libp2ptls.New))
		case SecurityNoise:
			opts = append(opts, libp2p.Security(noise.ID, noise.New))
		default:
			return nil, fmt.Errorf("unknown security protocol %q: want tls or noise", s)
		}
	}
	return opts, nil
}

// listenAll listens on every address, or fails naming the first that
// cannot be listened on. libp2p's own Listen succeeds when any address
// works, which would leave a server silently off a port it was given.
// An IPv6 address on a machine without IPv6 is the one exception: it is
// skipped, with a warning, when another address listens.
func listenAll(h host.Host, addrs []ma.Multiaddr) error {
	add := h.Network().Listen
	// The swarm's AddListenAddr returns the transport's own error; Listen
	// would wrap it in a list.
	if sw, ok := h.Network().(interface{ AddListenAddr(ma.Multiaddr) error }); ok {
		add = func(a ...ma.Multiaddr) error { return sw.AddListenAddr(a[0]) }
	}
	var skipped []error
	for _, a := range addrs {
		err := add(a)
		switch {
		case err == nil:
			continue
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("cannot listen on %s: the port is taken (another tsnode on it?): %v", a, err)
		case isIP6(a) && (errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)):
			skipped = append(skipped, fmt.Errorf("%s: %v", a, err))
		default:
			return fmt.Errorf("cannot listen on %s: %v", a, err)
		}
	}
	if len(skipped) > 0 {
		if len(h.Network().ListenAddresses()) == 0 {
			return fmt.Errorf("cannot listen on any address: %w", errors.Join(skipped...))
		}
		for _, err := range skipped {
			log.Warnw("no IPv6 here: not listening on this address", "err", err)
		}
	}
	return nil
}

func isIP6(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_IP6)
	return err == nil
}
