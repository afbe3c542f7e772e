package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WriteFrame writes one frame: an unsigned varint length, then body.
func WriteFrame(w io.Writer, body []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(body)))
	buf := make([]byte, 0, n+len(body))
	buf = append(append(buf, hdr[:n]...), body...)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max bytes. A frame larger than max
// is refused before its body is read (ErrTooLarge); end of stream before
// the length yields io.EOF, inside a frame io.ErrUnexpectedEOF.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	br := &byteReader{r: r}
	l, err := binary.ReadUvarint(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || br.err != nil {
			// The stream's own error (a reset, a deadline), as it is.
			return nil, err
		}
		return nil, fmt.Errorf("%w: bad frame length: %v", ErrMalformed, err)
	}
	// One encoding per length, as the multiformats unsigned-varint spec
	// asks: "81 00" is not a way to write 1.
	if br.n != binary.PutUvarint(make([]byte, binary.MaxVarintLen64), l) {
		return nil, fmt.Errorf("%w: frame length %d not minimally encoded", ErrMalformed, l)
	}
	if l > uint64(max) {
		return nil, fmt.Errorf("%w: frame of %d bytes, maximum %d", ErrTooLarge, l, max)
	}
	body := make([]byte, l)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// byteReader remembers a read error, so that ReadFrame can tell the
// stream's errors from a malformed length.
type byteReader struct {
	r   *bufio.Reader
	n   int // bytes read
	err error
}

func (b *byteReader) ReadByte() (byte, error) {
	c, err := b.r.ReadByte()
	if err != nil {
		b.err = err
	} else {
		b.n++
	}
	return c, err
}
