// Package p2pstream holds what every tsnode stream handler does first,
// and how it tells a peer gone from a protocol violation.
package p2pstream

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// Prepare does what every tsnode handler does first, as go-libp2p's own
// protocols do: account the stream to the protocol's resource-manager
// service and reserve memory for its largest message. release returns
// the memory.
func Prepare(s network.Stream, service string, reserve int) (release func(), err error) {
	if err := s.Scope().SetService(service); err != nil {
		return nil, fmt.Errorf("failed to attach stream to service %s: %w", service, err)
	}
	if err := s.Scope().ReserveMemory(reserve, network.ReservationPriorityAlways); err != nil {
		return nil, fmt.Errorf("failed to reserve %d bytes for %s: %w", reserve, service, err)
	}
	return func() { s.Scope().ReleaseMemory(reserve) }, nil
}
