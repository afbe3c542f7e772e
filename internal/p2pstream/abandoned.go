package p2pstream

import (
	"errors"

	"github.com/tsnode/tsnode/protocol"
)

// Abandoned tells a read that failed because the stream did — the peer's
// reset or its close in the middle of a frame, a lost connection, a
// network error (a firewall's sendmsg EPERM), the idle deadline — from
// one that read bytes breaking the framing (protocol.ReadFrame's
// ErrMalformed and ErrTooLarge), which is a protocol violation. The rule
// names the violations rather than the network's errors, since those
// come in as many types as there are transports. nil is neither.
func Abandoned(err error) bool {
	return err != nil && !errors.Is(err, protocol.ErrMalformed) && !errors.Is(err, protocol.ErrTooLarge)
}
