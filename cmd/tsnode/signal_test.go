package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// silentServer is the server's identity on a host that takes stamp
// sessions and then answers nothing: the peer of a requester whose server
// hangs once the connection is up. With acceptHello it runs the key
// exchange first, so the requester's stamps are in flight when it hangs.
func silentServer(t *testing.T, acceptHello bool) string {
	t.Helper()
	h := testnet.NewHost(t, "server", testnet.Transports[0].Listen)
	var mu sync.Mutex
	var held []network.Stream
	h.SetStreamHandler(protocol.SessionProtocolID, func(s network.Stream) {
		mu.Lock()
		held = append(held, s) // closed at cleanup, never before
		mu.Unlock()
		if acceptHello {
			answerHello(t, s)
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range held {
			s.Reset()
		}
	})
	return h.Addrs()[0].String() + "/p2p/" + h.ID().String()
}

// answerHello accepts requester 1000's session hello on s.
func answerHello(t *testing.T, s network.Stream) {
	frame, err := protocol.ReadFrame(bufio.NewReader(s), protocol.MaxSessionHelloSize)
	if err != nil {
		return
	}
	if _, _, err := protocol.OpenSessionHello(testkeys.Private(t, "server"), frame); err != nil {
		t.Errorf("session hello: %v", err)
		return
	}
	replyKey, err := protocol.NewSessionKey()
	if err != nil {
		t.Error(err)
		return
	}
	accept, err := protocol.SealSessionAccept(testkeys.Public(t, "1000"), replyKey)
	if err != nil {
		t.Error(err)
		return
	}
	_ = protocol.WriteFrame(s, accept)
}

// blackhole accepts TCP connections and never speaks: the libp2p
// handshake with it hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
}

// A requester whose server hangs ends within a second or two of SIGTERM
// or SIGINT, whatever the network does (it used to wait out the 30 s
// session hello); a second signal ends it at once.
func TestRequesterStopsAtOnceOnSignal(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	doc := writeFile(t, filepath.Join(t.TempDir(), "doc.txt"), "hello\n")
	helloUnanswered, stampsUnanswered := silentServer(t, false), silentServer(t, true)
	for _, tc := range []struct {
		name    string
		server  string
		signals []syscall.Signal
		within  time.Duration
	}{
		{"hello never answered, SIGTERM", helloUnanswered, []syscall.Signal{syscall.SIGTERM}, 5 * time.Second},
		{"stamp never answered, SIGTERM", stampsUnanswered, []syscall.Signal{syscall.SIGTERM}, 5 * time.Second},
		{"stamp never answered, SIGINT twice", stampsUnanswered, []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 2 * time.Second},
		{"handshake never answered, SIGTERM", blackhole(t), []syscall.Signal{syscall.SIGTERM}, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
			defer cancel()
			cmd := tsnodeCmd(t, ctx, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass,
				"--server", tc.server, "--file", doc)
			var out lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			// Give it the time to load its key and reach the server.
			select {
			case <-exited:
				t.Fatalf("requester exited before the signal\n%s", out.String())
			case <-time.After(3 * time.Second):
			}
			start := time.Now()
			// A second signal, as soon as a person presses Ctrl-C again,
			// ends the process whatever the first one left to do (or
			// finds it gone).
			for i, sig := range tc.signals {
				if i > 0 {
					time.Sleep(100 * time.Millisecond)
				}
				if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
					t.Fatal(err)
				}
			}
			select {
			case <-exited:
			case <-time.After(tc.within):
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("requester still running %v after %v\n%s", tc.within, tc.signals, out.String())
			}
			t.Logf("exited %v after the first signal: %v", time.Since(start).Round(time.Millisecond), cmd.ProcessState)
			if code := cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("exit 0 after a signal, want a failure\n%s", out.String())
			}
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var _ io.Writer = (*lockedBuffer)(nil)
