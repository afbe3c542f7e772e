package logstore

import (
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// BenchmarkSaveHead measures one head saved as the server saves each:
// write, fsync, rename, fsync of the directory.
//
//	go test -run '^$' -bench SaveHead ./node/logstore/
func BenchmarkSaveHead(b *testing.B) {
	self := testnet.Entry(b, "server")
	sth, err := protocol.SignTreeHead(testkeys.Private(b, "server"), &protocol.TreeHead{ServerID: self.ID, ServerPeer: self.PeerID, Size: 1})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for b.Loop() {
		if err := SaveHead(dir, sth); err != nil {
			b.Fatal(err)
		}
	}
}
