package p2pstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/tsnode/tsnode/protocol"
)

// What the network does to a read is the peer gone; what ReadFrame makes
// of bad bytes is a violation.
func TestAbandoned(t *testing.T) {
	readFrame := func(b []byte) error {
		_, err := protocol.ReadFrame(bufio.NewReader(bytes.NewReader(b)), 256)
		return err
	}
	for _, c := range []struct {
		name      string
		err       error
		abandoned bool
	}{
		{"reset", fmt.Errorf("stream: %w", network.ErrReset), true},
		{"idle deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), true},
		{"sendmsg refused by a firewall", &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmsg", syscall.EPERM)}, true},
		{"connection closed", net.ErrClosed, true},
		{"end inside a frame", readFrame([]byte{10, 1, 2}), true},
		{"frame too long", readFrame([]byte{0x81, 0x02}), false},
		{"length not minimally encoded", readFrame([]byte{0x81, 0x00}), false},
		{"length overflows", readFrame(bytes.Repeat([]byte{0xff}, 11)), false},
		{"malformed after a frame", fmt.Errorf("%w: hash of 31 bytes", protocol.ErrMalformed), false},
		{"no error", nil, false},
	} {
		if got := Abandoned(c.err); got != c.abandoned {
			t.Errorf("%s (%v): Abandoned %v, want %v", c.name, c.err, got, c.abandoned)
		}
	}
	if err := readFrame([]byte{10, 1, 2}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a frame cut short reads as %v, want io.ErrUnexpectedEOF", err)
	}
}
