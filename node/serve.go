package node

import (
	"context"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/protocol"
)

// Service is a started server or verifier.
type Service struct {
	Host host.Host
}

// StartServer starts a timestamp server: the stamp protocol on a host
// listening on listen.
func StartServer(id *Identity, listen []string) (*Service, error) {
	h, err := NewHost(id, listen)
	if err != nil {
		return nil, err
	}
	stamper := protocol.NewStamper(id.Key, id.Self, id.Dir, nil)
	h.SetStreamHandler(protocol.StampProtocolID, protocol.StampHandler(stamper))
	return &Service{Host: h}, nil
}

// VerifierOptions tune a verifier.
type VerifierOptions struct {
	StoreDir  string
	OnVerdict func(peer.ID, *protocol.Verdict)
}

// StartVerifier starts a verifier: the relay protocol on a host listening
// on listen.
func StartVerifier(id *Identity, listen []string, opts VerifierOptions) (*Service, error) {
	h, err := NewHost(id, listen)
	if err != nil {
		return nil, err
	}
	v := &protocol.Verifier{Key: id.Key, Self: id.Self, Dir: id.Dir, StoreDir: opts.StoreDir, OnVerdict: opts.OnVerdict}
	h.SetStreamHandler(protocol.RelayProtocolID, v.Handler())
	return &Service{Host: h}, nil
}

// PrintAddrs writes one full multiaddr (with /p2p/) per line.
func (s *Service) PrintAddrs(w io.Writer, role string) {
	for _, a := range FullAddrs(s.Host) {
		fmt.Fprintf(w, "%s listening on %s\n", role, a)
	}
}

// Run serves until ctx ends, then closes the host.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return s.Close()
}

// Close stops the service.
func (s *Service) Close() error { return s.Host.Close() }
