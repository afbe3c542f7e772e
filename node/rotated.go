package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// ErrRotatedKey: an address names a peer ID whose key was rotated.
var ErrRotatedKey = errors.New("key was rotated")

// rotatedError explains an address whose /p2p/ part is a retired key of
// id; nil if it is none.
func rotatedError(id identity.ID, addr string, pid, current peer.ID, retired []protocol.RetiredKey) error {
	for _, k := range retired {
		if k.ID != id || k.PeerID != pid {
			continue
		}
		return fmt.Errorf("multiaddr %q names peer %s: %w: %s's key %s was retired at %s and replaced by %s; "+
			"%s's current key is %s: use /p2p/%s in the address, or leave the /p2p/ part out",
			addr, pid, ErrRotatedKey, id, pid, protocol.FormatTime(k.RetiredAt), k.Successor, id, current, current)
	}
	return nil
}

// ExplainDialError adds a hint to an error dialing id whose cause is that
// the remote's key is not the one the identity directory holds for id:
// the likely cause is a key rotation this host has not heard of. Other
// errors come back as they are.
func ExplainDialError(err error, id identity.ID) error {
	if err == nil {
		return nil
	}
	var mismatch sec.ErrPeerIDMismatch
	msg := strings.ToLower(err.Error())
	if !errors.As(err, &mismatch) && !strings.Contains(msg, "peer id mismatch") && !strings.Contains(msg, "peer ids don't match") {
		return err
	}
	return fmt.Errorf("%w (the remote's key is not the identity directory's key of %s: its key may have been rotated; "+
		"copy public/%s.pem and public/%s/ from its host into this host's keys directory)", err, id, id, identity.RetiredDir)
}
