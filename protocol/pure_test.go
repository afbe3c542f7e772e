package protocol

import (
	"os/exec"
	"strings"
	"testing"
)

// protocol is the pure core someone embeds to verify receipts: no
// storage, no libp2p host, network or transport, no logging, none of the
// authority's machinery. (core/peer and core/crypto, for peer IDs, are
// fine.)
func TestProtocolIsPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	forbidden := []string{
		"go.etcd.io/bbolt",
		"github.com/libp2p/go-libp2p/p2p/",
		"github.com/libp2p/go-libp2p/core/host",
		"github.com/libp2p/go-libp2p/core/network",
		"github.com/libp2p/go-libp2p/core/transport",
		"github.com/ipfs/go-log",
		"github.com/tsnode/tsnode/internal/merklelog",
		"github.com/tsnode/tsnode/internal/crtsign",
		"github.com/tsnode/tsnode/node",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") || strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f) {
				t.Errorf("protocol imports %s", dep)
			}
		}
	}
}
