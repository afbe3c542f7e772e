// Package identity manages tsnode identities: RSA-4096 key files and the
// directory that maps each id to its public key and libp2p peer ID.
package identity

import (
	"fmt"
	"regexp"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ID names a participant ("server", "1000", "2000"). It is only ever
// resolved through a Directory, never turned into a path unchecked.
type ID string

// The ids of the original design.
const (
	ServerID    ID = "server"
	RequesterID ID = "1000"
	VerifierID  ID = "2000"
)

// KeyBits is the only RSA modulus size tsnode accepts.
const KeyBits = 4096

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ParseID checks that s is a well-formed id: 1 to 64 letters, digits, '_',
// '-' or '.', not starting with a separator, so it can never name a path
// outside the key directory.
func ParseID(s string) (ID, error) {
	if !idPattern.MatchString(s) || s == "." || s == ".." {
		return "", fmt.Errorf("invalid id %q: want 1-64 characters from [A-Za-z0-9_.-], starting with a letter or digit", s)
	}
	return ID(s), nil
}

func (id ID) String() string { return string(id) }

// ParsePeerID parses the text form of a peer ID (base58btc of its
// multihash, PROTOCOL.md §1.4), refusing every other spelling of the same
// peer ID, such as the CIDv1 form ("bafz...") that peer.Decode also
// accepts: each peer ID has one spelling in signed bytes.
func ParsePeerID(s string) (peer.ID, error) {
	p, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("invalid peer ID %q: %v", s, err)
	}
	if p.String() != s {
		return "", fmt.Errorf("invalid peer ID %q: not the base58btc text form (that is %s)", s, p)
	}
	return p, nil
}
