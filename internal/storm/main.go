// Command storm dials a libp2p TCP listener at a fixed rate, each time as
// a stranger (a fresh Ed25519 identity that no directory holds), and runs
// one security handshake (Noise or TLS) per connection: what an attacker
// who may not use the server can still make it do before its connection
// gater refuses him. scripts/handshake-storm.sh drives it.
//
//	storm --addr /ip4/127.0.0.1/tcp/7400/p2p/Qm... --proto noise --rate 60 --duration 10s
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// maxInFlight bounds the handshakes under way, so that a server that
// stops answering cannot make the storm grow without end.
const maxInFlight = 256

func main() {
	addr := flag.String("addr", "", "the server's TCP `multiaddr`, with /p2p/")
	proto := flag.String("proto", "noise", "security protocol to offer: noise or tls")
	rate := flag.Float64("rate", 60, "handshakes per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to storm")
	flag.Parse()
	if _, err := run(*addr, *proto, *rate, *duration); err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		os.Exit(1)
	}
}

type tally struct{ done, refused, failed atomic.Int64 }

func run(addr, proto string, rate float64, duration time.Duration) (*tally, error) {
	if rate <= 0 || rate > 10000 || duration <= 0 || duration > time.Hour {
		return nil, errors.New("want 0 < --rate <= 10000 and 0 < --duration <= 1h")
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr: %w", err)
	}
	transport, pid := peer.SplitAddr(a)
	if transport == nil || pid == "" {
		return nil, fmt.Errorf("--addr %s: want a TCP multiaddr ending in /p2p/<peer ID>", addr)
	}
	network, hostport, err := manet.DialArgs(transport)
	if err != nil || (network != "tcp4" && network != "tcp6") {
		return nil, fmt.Errorf("--addr %s: not a TCP address", addr)
	}
	var protoID string
	var newTransport func(crypto.PrivKey) (sec.SecureTransport, error)
	switch proto {
	case "noise":
		protoID = string(noise.ID)
		newTransport = func(k crypto.PrivKey) (sec.SecureTransport, error) { return noise.New(noise.ID, k, nil) }
	case "tls":
		protoID = libp2ptls.ID
		newTransport = func(k crypto.PrivKey) (sec.SecureTransport, error) { return libp2ptls.New(libp2ptls.ID, k, nil) }
	default:
		return nil, fmt.Errorf("--proto %q: want noise or tls", proto)
	}

	var t tally
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxInFlight)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	end := time.After(duration)
	start := time.Now()
	sent := 0
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			t.failed.Add(1) // the server is not keeping up: counted, not queued
			continue
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			switch err := handshake(network, hostport, protoID, pid, newTransport); {
			case err == nil:
				t.done.Add(1)
			case errors.Is(err, errRefused):
				t.refused.Add(1)
			default:
				if t.failed.Add(1) == 1 {
					fmt.Fprintf(os.Stderr, "storm: first failure: %v\n", err)
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Printf("storm: %d %s handshakes in %.1f s (%.1f/s): %d completed, %d refused before the handshake, %d failed\n",
		sent, proto, secs, float64(sent)/secs, t.done.Load(), t.refused.Load(), t.failed.Load())
	return &t, nil
}

// errRefused: the server does not offer the security protocol.
var errRefused = errors.New("security protocol refused")

// handshake dials once as a fresh stranger and runs the handshake up to
// where the server has done its part of the work.
func handshake(network, hostport, protoID string, server peer.ID, newTransport func(crypto.PrivKey) (sec.SecureTransport, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return err
	}
	tpt, err := newTransport(priv)
	if err != nil {
		return err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, hostport)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if err := selectProto(conn, protoID); err != nil {
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	sc, err := tpt.SecureOutbound(ctx, conn, server)
	if err != nil {
		return err
	}
	// The server's gater may have reset the connection already.
	_ = sc.Close()
	return nil
}

// selectProto is multistream-select 1.0.0 as the initiator, for one
// protocol: length-prefixed lines, the header then the protocol, each
// echoed back, or "na" for a protocol the listener does not speak.
func selectProto(conn net.Conn, proto string) error {
	const header = "/multistream/1.0.0"
	var out []byte
	for _, line := range []string{header, proto} {
		out = binary.AppendUvarint(out, uint64(len(line)+1))
		out = append(append(out, line...), '\n')
	}
	if _, err := conn.Write(out); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for _, want := range []string{header, proto} {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > 1024 {
			return fmt.Errorf("multistream: bad reply (%v)", err)
		}
		line := make([]byte, n)
		if _, err := io.ReadFull(r, line); err != nil {
			return err
		}
		switch string(line) {
		case want + "\n":
		case "na\n":
			return errRefused
		default:
			return fmt.Errorf("multistream: got %q, want %q", line, want)
		}
	}
	if r.Buffered() > 0 {
		return errors.New("multistream: unexpected bytes after the reply")
	}
	return nil
}
