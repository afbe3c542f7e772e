package testkeys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"

	"github.com/tsnode/tsnode/identity"
)

// OnlineKeySeed is what the TEST-ONLY online key of an id is made from:
// its private scalar is SHA-256 of OnlineKeySeed followed by the id.
const OnlineKeySeed = "tsnode TEST-ONLY online key of "

// OnlineKey returns the TEST-ONLY ECDSA P-256 online key (PROTOCOL.md
// §5.6) of id, for the worked example and the protocol vectors, which
// need the same key on every run. Anyone can remake it from
// OnlineKeySeed: never use it outside tests. A server draws a fresh
// online key and never writes it down.
func OnlineKey(id identity.ID) *ecdsa.PrivateKey {
	scalar := sha256.Sum256([]byte(OnlineKeySeed + string(id)))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:])
	if err != nil {
		// Only for a digest of at least the group order: about one id
		// in 2^32.
		panic(fmt.Sprintf("test online key of %s: %v", id, err))
	}
	return k
}
