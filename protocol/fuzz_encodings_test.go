package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
)

// Fuzz targets of the binary encodings, seeded from testdata/vectors.
// Each asserts that errors wrap the documented sentinel and that what
// decodes re-encodes to the same bytes: every encoding is canonical.

func FuzzParseTime(f *testing.F) {
	addVectorSeeds(f, "ParseTime")
	f.Fuzz(func(t *testing.T, b []byte) {
		tm, err := ParseTime(string(b))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("parsed %v in %v, not UTC", tm, tm.Location())
		}
		if s := FormatTime(tm); s != string(b) {
			t.Fatalf("%q parses, but formats as %q", b, s)
		}
	})
}

func FuzzParseTreeHead(f *testing.F) {
	addVectorSeeds(f, "ParseTreeHead")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseTreeHead(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := h.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("tree head %x re-encodes to %x", b, re)
		}
	})
}

// FuzzStatementCanonical parses the input as a statement and as a leaf:
// what parses re-encodes to the input, and the parser that skips
// decoding the expected parties (KnownParties) agrees with the full one.
func FuzzStatementCanonical(f *testing.F) {
	addVectorSeeds(f, "ParseStatement", "ParseLeaf")
	entries := []identity.Entry{entry(f, "server"), entry(f, "1000")}
	f.Fuzz(func(t *testing.T, b []byte) {
		known := NewKnownParties(entries...)
		for _, c := range []struct {
			tag   string
			parse func([]byte) (*Statement, error)
		}{{StatementTag, ParseStatement}, {LeafTag, ParseLeaf}} {
			s, err := c.parse(b)
			for range 2 { // the second time from KnownParties' cached time
				ks, kerr := parseStatement(b, c.tag, known)
				if (err == nil) != (kerr == nil) || (err != nil && err.Error() != kerr.Error()) {
					t.Fatalf("%s: full parse: %v; with known parties: %v", c.tag, err, kerr)
				}
				if err == nil && !reflect.DeepEqual(s, ks) {
					t.Fatalf("%s: full parse %+v, with known parties %+v", c.tag, s, ks)
				}
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s: error %v is not ErrMalformed", c.tag, err)
				}
				continue
			}
			if re := s.encode(c.tag); !bytes.Equal(re, b) {
				t.Fatalf("%s: %x re-encodes to %x", c.tag, b, re)
			}
		}
	})
}

// FuzzFrameCanonical: a frame that is read is exactly what WriteFrame
// writes for its body (one length encoding per length).
func FuzzFrameCanonical(f *testing.F) {
	addFrameVectorSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		src := bytes.NewReader(data)
		r := bufio.NewReaderSize(src, 16)
		body, err := ReadFrame(r, int(max))
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
				!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		consumed := len(data) - r.Buffered() - src.Len()
		var w bytes.Buffer
		if err := WriteFrame(&w, body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w.Bytes(), data[:consumed]) {
			t.Fatalf("read frame %x, WriteFrame writes %x", data[:consumed], w.Bytes())
		}
	})
}

func FuzzParseRotation(f *testing.F) {
	addVectorSeeds(f, "ParseRotation")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRotation(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := r.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("rotation %x re-encodes to %x", b, re)
		}
	})
}
