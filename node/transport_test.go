package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// A port one host listens on is refused to a second one, on TCP (which
// go-libp2p would share through SO_REUSEPORT) and on QUIC, with an error
// naming the address; so is a list where only one address is taken.
func TestListenPortTaken(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			first, err := NewHost(testIdentity(t, "server", dir), []string{tr.listen})
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			taken := first.Addrs()[0].String()
			for _, listen := range [][]string{{taken}, {LoopbackListen, "/ip4/127.0.0.1/udp/0/quic-v1", taken}} {
				second, err := NewHost(testIdentity(t, "server", dir), listen)
				if err == nil {
					second.Close()
					t.Fatalf("a second host listened on %v, %s taken by the first", listen, taken)
				}
				msg := err.Error()
				if !strings.Contains(msg, "cannot listen on "+taken) || !strings.Contains(msg, "taken") || strings.Contains(msg, "\n") {
					t.Errorf("error %q: want one line naming %s as taken", msg, taken)
				}
			}
			// The first host still serves alone.
			connect(t, NewHostT(t, testIdentity(t, "1000", dir), nil), first)
		})
	}
}

// NewHostT is NewHost closed at cleanup.
func NewHostT(t *testing.T, id *Identity, listen []string, security ...string) host.Host {
	t.Helper()
	h, err := NewHost(id, listen, security...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func tryConnect(t *testing.T, from, to host.Host) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()})
}

func connect(t *testing.T, from, to host.Host) {
	t.Helper()
	if err := tryConnect(t, from, to); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// A server offers TLS only unless asked for Noise too; a client offers
// both, so it reaches either. Only TCP negotiates a security protocol
// (QUIC always runs TLS).
func TestListenSecurity(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	client := testIdentity(t, "1000", dir)
	for _, tc := range []struct {
		name      string
		server    []string // Identity.ListenSecurity
		noiseOnly bool     // whether a client offering only Noise gets in
	}{
		{"default", nil, false},
		{"tls", []string{SecurityTLS}, false},
		{"tls,noise", []string{SecurityTLS, SecurityNoise}, true},
		{"noise", []string{SecurityNoise}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := testIdentity(t, "server", dir)
			id.ListenSecurity = tc.server
			srv := NewHostT(t, id, []string{LoopbackListen}, id.listenSecurity()...)
			connect(t, NewHostT(t, client, nil), srv)
			err := tryConnect(t, NewHostT(t, client, nil, SecurityNoise), srv)
			if (err == nil) != tc.noiseOnly {
				t.Errorf("a Noise-only client: err %v, want success %v", err, tc.noiseOnly)
			}
		})
	}
}

func TestParseSecurity(t *testing.T) {
	for in, want := range map[string]string{"tls": "tls", "noise": "noise", "tls,noise": "tls noise", "noise, tls": "noise tls"} {
		got, err := ParseSecurity(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseSecurity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ssl", "tls,tls", "tls,", "TLS"} {
		if got, err := ParseSecurity(in); err == nil {
			t.Errorf("ParseSecurity(%q) = %q, want an error", in, got)
		}
	}
	if _, err := NewHost(testIdentity(t, "1000", testkeys.Directory(t, "1000")), nil, "ssl"); err == nil || !strings.Contains(err.Error(), `"ssl"`) {
		t.Errorf("NewHost with security ssl: %v", err)
	}
}
