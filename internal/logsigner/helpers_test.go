package logsigner

import (
	"bytes"
	"testing"

	"tsnode/identity"
	"tsnode/internal/testnet"
	"tsnode/protocol"
)

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func entry(t testing.TB, id identity.ID) identity.Entry { return testnet.Entry(t, id) }

func trustOf(t testing.TB, dir *identity.Directory, ids ...identity.ID) *protocol.Trust {
	return testnet.Trust(t, dir, ids...)
}
