// Package testnet serves the services' tests: real libp2p hosts on
// loopback whose identities are the TEST-ONLY keys of internal/testkeys,
// raw streams to break a protocol's framing, and the identities and
// trust policies those tests need. Only tests import it.
package testnet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// Transports are the loopback listen addresses every service is tested on.
var Transports = []struct{ Name, Listen string }{
	{"tcp", "/ip4/127.0.0.1/tcp/0"},
	{"quic", "/ip4/127.0.0.1/udp/0/quic-v1"},
}

// NewHost starts a host whose identity is the test key of id, listening
// on listen (empty: dial only). It is closed at cleanup.
func NewHost(t testing.TB, id identity.ID, listen string) host.Host {
	t.Helper()
	priv, err := identity.LibP2PPrivateKey(testkeys.Private(t, id))
	if err != nil {
		t.Fatal(err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(priv),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DisableRelay(),
	}
	if listen == "" {
		opts = append(opts, libp2p.NoListenAddrs)
	} else {
		opts = append(opts, libp2p.ListenAddrStrings(listen))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Ctx is a context that ends with the test, or after 30 s.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ClientOf starts a dial-only host for id connected to server.
func ClientOf(t testing.TB, id identity.ID, server host.Host) host.Host {
	t.Helper()
	h := NewHost(t, id, "")
	if err := h.Connect(Ctx(t), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return h
}

// RawStream opens a stream of protocol id from one host to another, to
// write whatever bytes a test needs.
func RawStream(t testing.TB, from host.Host, to peer.ID, id string) network.Stream {
	t.Helper()
	s, err := from.NewStream(Ctx(t), to, libp2pprotocol.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	_ = s.SetDeadline(time.Now().Add(20 * time.Second))
	return s
}

// FrameHeader is the length prefix of a frame of n bytes, with no body.
func FrameHeader(n int) []byte {
	var b bytes.Buffer
	protocol.WriteFrame(&b, make([]byte, n))
	return b.Bytes()[:b.Len()-n]
}

// ExpectReset reads from s until an error, which must be a stream reset.
func ExpectReset(t testing.TB, s network.Stream) {
	t.Helper()
	_, err := bufio.NewReader(s).ReadByte()
	for err == nil {
		_, err = bufio.NewReader(s).ReadByte()
	}
	if !errors.Is(err, network.ErrReset) {
		t.Fatalf("read after a violation: %v, want a stream reset", err)
	}
}

// ExpectLinger checks how a server ends a stream it stopped reading
// (PROTOCOL.md §7.7): it closes its side (s reads to the end, io.EOF,
// after any replies), then resets the stream when the client does not
// close its own within protocol.SessionLinger.
func ExpectLinger(t testing.TB, s network.Stream) {
	t.Helper()
	r := bufio.NewReader(s)
	_, err := r.ReadByte()
	for err == nil {
		_, err = r.ReadByte()
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("read after the server stopped reading: %v, want the end of the stream", err)
	}
	deadline := time.Now().Add(protocol.SessionLinger + 10*time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.Write([]byte{0}); err != nil {
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("write while the server lingers: %v, want a stream reset in the end", err)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the server did not reset the stream within %v of its close", protocol.SessionLinger+10*time.Second)
}

// Entry returns the identity entry of a test key ("server", "1000",
// "2000", "outsider"), whether or not a directory holds it.
func Entry(t testing.TB, id identity.ID) identity.Entry {
	t.Helper()
	pub := &testkeys.Private(t, id).PublicKey
	pid, err := identity.PeerIDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return identity.Entry{ID: id, PublicKey: pub, PeerID: pid}
}

// Trust trusts the authorities ids (default: "server") with their keys in
// dir.
func Trust(t testing.TB, dir *identity.Directory, ids ...identity.ID) *protocol.Trust {
	t.Helper()
	if len(ids) == 0 {
		ids = []identity.ID{identity.ServerID}
	}
	trust, err := protocol.NewTrust(dir, nil, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return trust
}

// OpenLog opens the Merkle log in dir, or creates it if dir holds none;
// it is closed at cleanup.
func OpenLog(t testing.TB, dir string) *merklelog.Log {
	t.Helper()
	open := merklelog.Open
	if _, err := os.Stat(filepath.Join(dir, merklelog.FileName)); errors.Is(err, fs.ErrNotExist) {
		open = merklelog.Create
	}
	lg, err := open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	return lg
}

var (
	sigMu    sync.Mutex
	sigCache = map[string][]byte{}
)

// SignAs signs data with the test key of id, once per (id, data) and
// test binary: RSA-4096 signatures are slow.
func SignAs(t testing.TB, id identity.ID, data []byte) []byte {
	t.Helper()
	sigMu.Lock()
	defer sigMu.Unlock()
	k := string(id) + "\x00" + string(data)
	if sig, ok := sigCache[k]; ok {
		return bytes.Clone(sig)
	}
	sig, err := protocol.Sign(testkeys.Private(t, id), data)
	if err != nil {
		t.Fatal(err)
	}
	sigCache[k] = sig
	return bytes.Clone(sig)
}

// CaptureLogs gives the lines that subsystem ("tsnode/stamp") logs at
// INFO and above, until the test ends, to the returned observer instead
// of stderr, so that a test can check what an operator would read (other
// subsystems' lines too, at their own levels: FilterLoggerName). The
// log's configuration is global: a test that captures must not run in
// parallel with others of its package.
func CaptureLogs(t testing.TB, subsystem string) *observer.ObservedLogs {
	t.Helper()
	before, err := logging.SubsystemLevelName(subsystem)
	if err != nil {
		t.Fatalf("capturing the logs of %s: %v", subsystem, err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	logging.SetPrimaryCore(core)
	if err := logging.SetLogLevel(subsystem, "info"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = logging.SetLogLevel(subsystem, before)
		logging.SetupLogging(logging.GetConfig())
	})
	return logs
}
