package node

import (
	"crypto/rand"
	"fmt"

	ic "github.com/libp2p/go-libp2p/core/crypto"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// EphemeralIdentity is an auditor's identity: the directory's public
// keys (to know the server and check its signatures) and a fresh Ed25519
// libp2p key made for this run, so that no private key of the swarm, and
// no passphrase, is needed. A server admits it only with --public-log,
// and then to the log protocol only. It has no id: Self is empty and
// Key nil.
func EphemeralIdentity(dir *identity.Directory, retired []protocol.RetiredKey) (*Identity, error) {
	priv, _, err := ic.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("cannot make an ephemeral libp2p key: %w", err)
	}
	return &Identity{Dir: dir, Retired: retired, hostKey: priv}, nil
}

// libp2pKey is the host's libp2p identity.
func (id *Identity) libp2pKey() (ic.PrivKey, error) {
	if id.hostKey != nil {
		return id.hostKey, nil
	}
	if id.Key == nil {
		return nil, fmt.Errorf("identity %q has no private key", id.Self.ID)
	}
	return identity.LibP2PPrivateKey(id.Key)
}
