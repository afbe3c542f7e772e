package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// A stream error while reading a frame's length (a reset, a deadline) is
// the stream's error, not a malformed message: callers test it with
// errors.Is (network.ErrReset, os.ErrDeadlineExceeded).
func TestReadFrameKeepsStreamErrors(t *testing.T) {
	reset := errors.New("stream reset")
	for _, tc := range []struct {
		name string
		in   io.Reader
	}{
		{"before the length", iotest.ErrReader(reset)},
		{"inside the length", io.MultiReader(bytes.NewReader([]byte{0x80}), iotest.ErrReader(reset))},
		{"inside a long length", io.MultiReader(bytes.NewReader([]byte{0xff, 0xff}), iotest.ErrReader(reset))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(tc.in), 100)
			if !errors.Is(err, reset) || errors.Is(err, ErrMalformed) {
				t.Fatalf("ReadFrame = %v, want the stream's error and not ErrMalformed", err)
			}
		})
	}
}
