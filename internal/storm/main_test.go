package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node"
)

// The storm's strangers complete the handshakes the server offers, are
// refused the others before any handshake, and are never let in.
func TestStorm(t *testing.T) {
	dir := testkeys.Directory(t, "server")
	id, err := node.NewIdentity("server", testkeys.Private(t, "server"), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		offer, storm          []string // server's security; the storm's
		wantDone, wantRefused bool
	}{
		{offer: node.DefaultListenSecurity, storm: []string{"noise"}, wantRefused: true},
		{offer: node.DefaultListenSecurity, storm: []string{"tls"}, wantDone: true},
		{offer: node.DialSecurity, storm: []string{"noise"}, wantDone: true},
	} {
		h, err := node.NewHost(id, []string{node.LoopbackListen}, tc.offer...)
		if err != nil {
			t.Fatal(err)
		}
		addr := node.FullAddrs(h)[0].String()
		got, err := run(addr, tc.storm[0], 50, 300*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		done, refused, failed := got.done.Load(), got.refused.Load(), got.failed.Load()
		if (done > 0) != tc.wantDone || (refused > 0) != tc.wantRefused || failed != 0 || done+refused < 3 {
			t.Errorf("server %v, storm %v: %d done, %d refused, %d failed", tc.offer, tc.storm, done, refused, failed)
		}
		for _, c := range h.Network().Conns() {
			t.Errorf("a stranger got in: %s", c.RemotePeer())
		}
		h.Close()
	}
	for _, bad := range [][]string{
		{"/ip4/127.0.0.1/tcp/1", "noise"},
		{"/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + string(mustPeer(t, dir)), "noise"},
		{"/ip4/127.0.0.1/tcp/1/p2p/" + string(mustPeer(t, dir)), "ssl"},
	} {
		if _, err := run(bad[0], bad[1], 1, time.Millisecond); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("run(%q, %q): %v, want an error naming the flag", bad[0], bad[1], err)
		}
	}
}

func mustPeer(t *testing.T, dir *identity.Directory) string {
	e, err := dir.Lookup("server")
	if err != nil {
		t.Fatal(err)
	}
	return e.PeerID.String()
}
