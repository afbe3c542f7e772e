package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tag    string
		fields [][]byte
	}{
		{"no fields", "t/v1", nil},
		{"one empty field", "t/v1", [][]byte{{}}},
		{"several", "tsnode/x/v1", [][]byte{[]byte("a"), {}, {0, 0, 0, 0}, []byte("last")}},
		{"binary with length-like bytes", "t", [][]byte{{0, 0, 0, 9}, {0xff, 0xff, 0xff, 0xff}}},
		{"large field", "big", [][]byte{fill(70000, 7), []byte("x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := EncodeRecord(tc.tag, tc.fields...)
			want := 4 + len(tc.tag)
			for _, f := range tc.fields {
				want += 4 + len(f)
			}
			if len(enc) != want {
				t.Fatalf("encoding is %d bytes, want %d", len(enc), want)
			}
			got, err := DecodeRecord(enc, tc.tag, len(tc.fields))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.fields) {
				t.Fatalf("%d fields, want %d", len(got), len(tc.fields))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.fields[i]) {
					t.Errorf("field %d = %x, want %x", i, got[i], tc.fields[i])
				}
			}
		})
	}
}

func TestRecordLayout(t *testing.T) {
	got := EncodeRecord("ab", []byte("xyz"), nil)
	want := []byte{0, 0, 0, 2, 'a', 'b', 0, 0, 0, 3, 'x', 'y', 'z', 0, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeRecord = %x, want %x", got, want)
	}
}

func TestDecodeRecordRefuses(t *testing.T) {
	good := EncodeRecord("tag/v1", []byte("one"), []byte("two"))
	for _, tc := range []struct {
		name string
		in   []byte
		tag  string
		n    int
	}{
		{"empty input", nil, "tag/v1", 2},
		{"wrong tag", EncodeRecord("tag/v2", []byte("one"), []byte("two")), "tag/v1", 2},
		{"tag with a longer prefix", EncodeRecord("tag/v10", []byte("one"), []byte("two")), "tag/v1", 2},
		{"tag as a prefix", EncodeRecord("tag/v", []byte("one"), []byte("two")), "tag/v1", 2},
		{"too few fields", EncodeRecord("tag/v1", []byte("one")), "tag/v1", 2},
		{"too many fields", EncodeRecord("tag/v1", []byte("one"), []byte("two"), nil), "tag/v1", 2},
		{"far too many fields", EncodeRecord("tag/v1", nil, nil, nil, nil, nil, nil, nil), "tag/v1", 2},
		{"truncated length", append(bytes.Clone(good), 0, 0), "tag/v1", 2},
		{"truncated length, 3 bytes", append(bytes.Clone(good), 0, 0, 0), "tag/v1", 2},
		{"length past end", good[:len(good)-1], "tag/v1", 2},
		{"huge length", append(bytes.Clone(good), 0xff, 0xff, 0xff, 0xff), "tag/v1", 2},
		{"trailing byte", append(bytes.Clone(good), 'x'), "tag/v1", 2},
		{"only a length", []byte{0, 0, 0, 6}, "tag/v1", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := DecodeRecord(tc.in, tc.tag, tc.n)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeRecord = %q, %v; want ErrMalformed", f, err)
			}
		})
	}
}

// Flaw 6: the prototype joined fields with "<!>", so a signature or hash
// containing those bytes broke the message apart. Records carry any bytes.
func TestDelimiterBytesSurviveRecordsAndFrames(t *testing.T) {
	sig := fill(512, 0x3c)
	copy(sig[0:], "<!>")
	copy(sig[100:], "<!><!>")
	copy(sig[509:], "<!>")
	fields := [][]byte{[]byte("<!>"), sig, []byte("a<!>b"), {}, []byte("<!")}

	var buf bytes.Buffer
	if err := WriteFrame(&buf, EncodeRecord("tsnode/stamp-reply/v1", fields...)); err != nil {
		t.Fatal(err)
	}
	frame, err := ReadFrame(bufio.NewReader(&buf), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRecord(frame, "tsnode/stamp-reply/v1", len(fields))
	if err != nil {
		t.Fatal(err)
	}
	for i := range fields {
		if !bytes.Equal(got[i], fields[i]) {
			t.Errorf("field %d = %q, want %q", i, got[i], fields[i])
		}
	}

	// A statement whose nonce and hash hold the delimiter round-trips, and a
	// reply record pairing it with a "<!>"-laden signature decodes.
	s := sampleStatement(t)
	copy(s.Nonce[3:], "<!>")
	copy(s.DocumentHash[HashSize-3:], "<!>")
	enc := s.Encode()
	p, err := ParseStatement(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Nonce, s.Nonce) || !bytes.Equal(p.DocumentHash, s.DocumentHash) {
		t.Fatalf("statement fields changed: nonce %q hash %q", p.Nonce, p.DocumentHash)
	}
	rf, err := DecodeRecord(EncodeRecord(StampReplyTag, enc, sig), StampReplyTag, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rf[0], enc) || !bytes.Equal(rf[1], sig) {
		t.Fatal("reply record fields changed")
	}
}

func TestFrameRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 127, 128, 300, 16383, 16384, 70000}
	var buf bytes.Buffer
	for i, n := range sizes {
		if err := WriteFrame(&buf, fill(n, byte(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReaderSize(&buf, 16)
	for i, n := range sizes {
		body, err := ReadFrame(r, 70000)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(body, fill(n, byte(i+1))) {
			t.Fatalf("frame %d: %d bytes, want %d of %d", i, len(body), n, i+1)
		}
	}
	if body, err := ReadFrame(r, 70000); err != io.EOF {
		t.Fatalf("after the last frame: %d bytes, %v; want io.EOF", len(body), err)
	}
}

func TestFrameLengthIsUvarint(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, fill(300, 1)); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes()[:2]; !bytes.Equal(got, []byte{0xac, 0x02}) {
		t.Fatalf("length prefix %x, want ac02", got)
	}
	if buf.Len() != 302 {
		t.Fatalf("frame is %d bytes, want 302", buf.Len())
	}
}

// trapReader fails the test if anything reads it.
type trapReader struct{ read bool }

func (r *trapReader) Read(p []byte) (int, error) {
	r.read = true
	return 0, errors.New("body was read")
}

func TestReadFrameTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		length uint64
		max    int
	}{
		{"one over", 101, 100},
		{"zero max", 1, 0},
		{"huge claim", 1 << 62, 1 << 20},
		{"max uint64", ^uint64(0), 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := binary.AppendUvarint(nil, tc.length)
			trap := &trapReader{}
			r := bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), trap))
			body, err := ReadFrame(r, tc.max)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ReadFrame = %d bytes, %v; want ErrTooLarge", len(body), err)
			}
			if trap.read {
				t.Fatal("ReadFrame read past the length of a frame it refused")
			}
		})
	}
	t.Run("exactly max", func(t *testing.T) {
		var buf bytes.Buffer
		_ = WriteFrame(&buf, fill(100, 9))
		if body, err := ReadFrame(bufio.NewReader(&buf), 100); err != nil || len(body) != 100 {
			t.Fatalf("ReadFrame = %d bytes, %v; want 100 bytes", len(body), err)
		}
	})
}

func TestReadFrameErrors(t *testing.T) {
	ioErr := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		in   io.Reader
		want error
	}{
		{"EOF before length", bytes.NewReader(nil), io.EOF},
		{"EOF inside length", bytes.NewReader([]byte{0x80}), io.ErrUnexpectedEOF},
		{"EOF inside long length", bytes.NewReader([]byte{0xff, 0xff, 0x80}), io.ErrUnexpectedEOF},
		{"EOF before body", bytes.NewReader([]byte{10}), io.ErrUnexpectedEOF},
		{"EOF inside body", bytes.NewReader([]byte{10, 1, 2, 3}), io.ErrUnexpectedEOF},
		{"varint overflow", bytes.NewReader(append(fill(10, 0xff), 0x01)), ErrMalformed},
		{"varint overflow in tenth byte", bytes.NewReader(append(fill(9, 0xff), 0x02)), ErrMalformed},
		{"length not minimal (81 00 for 1)", bytes.NewReader([]byte{0x81, 0x00, 'x'}), ErrMalformed},
		{"length not minimal (80 80 00 for 0)", bytes.NewReader([]byte{0x80, 0x80, 0x00}), ErrMalformed},
		{"read error inside body", io.MultiReader(bytes.NewReader([]byte{10, 1}), iotest.ErrReader(ioErr)), ioErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := ReadFrame(bufio.NewReader(tc.in), 1<<20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadFrame = %d bytes, %v; want %v", len(body), err, tc.want)
			}
			if tc.want == io.EOF && err != io.EOF {
				t.Fatalf("ReadFrame = %v, want io.EOF itself", err)
			}
		})
	}
	t.Run("read error before length is not a clean EOF", func(t *testing.T) {
		_, err := ReadFrame(bufio.NewReader(iotest.ErrReader(ioErr)), 100)
		if err == nil || errors.Is(err, io.EOF) {
			t.Fatalf("ReadFrame = %v, want an error other than io.EOF", err)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	addRecordVectorSeeds(f)
	f.Add(EncodeRecord("t", []byte("a"), nil), "t", uint8(2))
	f.Add(EncodeRecord(StatementTag, fill(9, 1)), StatementTag, uint8(1))
	f.Add(sampleStatement(f).Encode(), StatementTag, uint8(9))
	f.Add([]byte{0, 0, 0, 1, 't', 0xff, 0xff, 0xff, 0xff}, "t", uint8(1))
	f.Add([]byte{0, 0}, "", uint8(0))
	f.Add([]byte{}, "", uint8(0))
	f.Add([]byte("<!>a<!>b"), "<!>", uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, tag string, n uint8) {
		fields, err := DecodeRecord(b, tag, int(n%16))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(fields) != int(n%16) {
			t.Fatalf("%d fields, want %d", len(fields), n%16)
		}
		// Records are canonical: what decodes re-encodes to the same bytes.
		if re := EncodeRecord(tag, fields...); !bytes.Equal(re, b) {
			t.Fatalf("re-encoding %x differs from input %x", re, b)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	addFrameVectorSeeds(f)
	var two bytes.Buffer
	_ = WriteFrame(&two, []byte("hello"))
	_ = WriteFrame(&two, nil)
	f.Add(two.Bytes(), uint16(100))
	f.Add([]byte{0x80}, uint16(10))
	f.Add([]byte{0x80, 0x00}, uint16(10))
	f.Add(append(fill(10, 0xff), 1), uint16(10))
	f.Add([]byte{5, 1, 2}, uint16(10))
	f.Add([]byte{200, 1}, uint16(100))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, max uint16) {
		src := bytes.NewReader(data)
		r := bufio.NewReaderSize(src, 16)
		for {
			body, err := ReadFrame(r, int(max))
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(body) > int(max) {
				t.Fatalf("%d-byte body, maximum %d", len(body), max)
			}
			consumed := len(data) - r.Buffered() - src.Len()
			if consumed < len(body) || !bytes.Equal(body, data[consumed-len(body):consumed]) {
				t.Fatalf("body %x is not the bytes just before offset %d", body, consumed)
			}
		}
	})
}
