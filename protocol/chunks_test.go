package protocol

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

func testGCM(t testing.TB, keyByte byte) cipher.AEAD {
	t.Helper()
	aead, err := NewGCM(fill(SessionKeySize, keyByte))
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// sealChunks seals chunks in order, the last one final.
func sealChunks(t testing.TB, keyByte byte, chunks ...[]byte) [][]byte {
	s := &ChunkSealer{Aead: testGCM(t, keyByte)}
	var frames [][]byte
	for i, c := range chunks {
		frames = append(frames, s.Seal(c, i == len(chunks)-1))
	}
	return frames
}

func TestChunksRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks [][]byte
	}{
		{"empty document", [][]byte{nil}},
		{"one chunk", [][]byte{[]byte("only")}},
		{"several", [][]byte{[]byte("first"), fill(ChunkSize, 2), {}, []byte("last")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frames := sealChunks(t, 1, tc.chunks...)
			o := &ChunkOpener{Aead: testGCM(t, 1)}
			for i, fr := range frames {
				if want := 1 + len(tc.chunks[i]) + 16; len(fr) != want {
					t.Errorf("frame %d is %d bytes, want %d", i, len(fr), want)
				}
				if len(fr) > MaxRelayFrameSize {
					t.Errorf("frame %d is %d bytes, maximum %d", i, len(fr), MaxRelayFrameSize)
				}
				pt, final, err := o.Open(fr)
				if err != nil {
					t.Fatalf("chunk %d: %v", i, err)
				}
				if !bytes.Equal(pt, tc.chunks[i]) {
					t.Fatalf("chunk %d: %q, want %q", i, pt, tc.chunks[i])
				}
				if wantFinal := i == len(frames)-1; final != wantFinal || o.Done != wantFinal {
					t.Fatalf("chunk %d: final %v done %v, want %v", i, final, o.Done, wantFinal)
				}
			}
		})
	}
}

func TestChunksRefused(t *testing.T) {
	chunks := [][]byte{[]byte("zero"), []byte("one"), []byte("two")}
	f := sealChunks(t, 1, chunks...)
	other := sealChunks(t, 2, chunks...)
	// Continuing a sealer past its final chunk, as a misbehaving sender might.
	s := &ChunkSealer{Aead: testGCM(t, 1)}
	finalZero := s.Seal([]byte("zero"), true)
	afterFinal := s.Seal([]byte("more"), false)
	flags := func(fr []byte, flags byte) []byte {
		c := bytes.Clone(fr)
		c[0] = flags
		return c
	}
	verdict, err := SealVerdict(fill(SessionKeySize, 1), &Verdict{Verifier: "2000", Code: VerdictValid})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		frames [][]byte
		failAt int
		msg    string
	}{
		{"reordered", [][]byte{f[1], f[0], f[2]}, 0, ""},
		{"swapped later chunks", [][]byte{f[0], f[2], f[1]}, 1, ""},
		{"duplicated", [][]byte{f[0], f[0], f[1], f[2]}, 1, ""},
		{"dropped", [][]byte{f[0], f[2]}, 1, ""},
		{"final flag removed", [][]byte{f[0], f[1], flags(f[2], 0)}, 2, ""},
		{"final flag added (truncation)", [][]byte{f[0], flags(f[1], ChunkFinal)}, 1, ""},
		{"ciphertext byte flipped", [][]byte{f[0], flip(f[1], 1)}, 1, ""},
		{"tag byte flipped", [][]byte{flip(f[0], len(f[0])-1)}, 0, ""},
		{"other session key", [][]byte{other[0]}, 0, ""},
		{"data after final", [][]byte{f[0], f[1], f[2], f[2]}, 3, "after the final"},
		{"sealed after final", [][]byte{finalZero, afterFinal}, 1, "after the final"},
		{"frame shorter than the overhead", [][]byte{f[0][:16]}, 0, "too short"},
		{"empty frame", [][]byte{{}}, 0, "too short"},
		{"unknown flag", [][]byte{flags(f[0], 0x02)}, 0, "flags"},
		{"unknown flag with final", [][]byte{f[0], f[1], flags(f[2], 0x81)}, 2, "flags"},
		{"a verdict as a chunk", [][]byte{append([]byte{ChunkFinal}, verdict...)}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &ChunkOpener{Aead: testGCM(t, 1)}
			for i, fr := range tc.frames {
				pt, _, err := o.Open(fr)
				if i < tc.failAt {
					if err != nil {
						t.Fatalf("chunk %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, ErrChunk) {
					t.Fatalf("chunk %d: %q, %v; want ErrChunk", i, pt, err)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q does not say %q", err, tc.msg)
				}
				return
			}
			t.Fatal("no chunk was refused")
		})
	}
}

func TestRelayHeaderRoundTrip(t *testing.T) {
	key := fill(SessionKeySize, 9)
	receipt := []byte(`{"signature":"<!>"}`)
	for _, h := range []*RelayHeader{
		{SenderID: "1000", SessionKey: key, Receipt: receipt, DocumentSize: 0},
		{SenderID: "1000", SessionKey: key, Receipt: nil, DocumentSize: 1<<63 + 5},
	} {
		got, err := ParseRelayHeader(h.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if got.SenderID != h.SenderID || !bytes.Equal(got.SessionKey, h.SessionKey) ||
			!bytes.Equal(got.Receipt, h.Receipt) || got.DocumentSize != h.DocumentSize {
			t.Fatalf("parseRelayHeader = %+v, want %+v", got, h)
		}
	}

	// The largest header (a receipt of MaxReceiptSize, a 64-byte id) fits
	// its frame once sealed.
	long := identity.ID(strings.Repeat("a", 64))
	big := &RelayHeader{SenderID: long, SessionKey: key, Receipt: fill(MaxReceiptSize, '{'), DocumentSize: 1}
	sealed, err := Seal(&testkeys.Private(t, "2000").PublicKey, RelayHeaderTag, big.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > MaxRelayHeaderSize {
		t.Fatalf("largest sealed header is %d bytes, maximum %d", len(sealed), MaxRelayHeaderSize)
	}
	// And a real one opens with the verifier's key only.
	small := &RelayHeader{SenderID: "1000", SessionKey: key, Receipt: receipt, DocumentSize: 7}
	sealed, err = Seal(&testkeys.Private(t, "2000").PublicKey, RelayHeaderTag, small.Encode())
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Open(testkeys.Private(t, "2000"), RelayHeaderTag, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseRelayHeader(plain); err != nil || got.DocumentSize != 7 {
		t.Fatalf("parseRelayHeader = %+v, %v", got, err)
	}
	if _, err := Open(testkeys.Private(t, "2000"), StampRequestTag, sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("relay header opened as a stamp request: %v", err)
	}
}

func TestParseRelayHeaderRefuses(t *testing.T) {
	fields := func() [][]byte {
		return [][]byte{[]byte("1000"), fill(SessionKeySize, 9), []byte("{}"), u64(3)}
	}
	with := func(i int, v []byte) []byte {
		f := fields()
		f[i] = v
		return EncodeRecord(RelayHeaderTag, f...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"session key 31 bytes", with(1, fill(31, 9))},
		{"session key 33 bytes", with(1, fill(33, 9))},
		{"session key 16 bytes", with(1, fill(16, 9))},
		{"no session key", with(1, nil)},
		{"sender is a path", with(0, []byte("../1000"))},
		{"empty sender", with(0, nil)},
		{"size 7 bytes", with(3, fill(7, 0))},
		{"verdict tag", EncodeRecord(relayVerdictTag, fields()...)},
		{"three fields", EncodeRecord(RelayHeaderTag, fields()[:3]...)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRelayHeader(tc.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseRelayHeader = %+v, %v; want ErrMalformed", got, err)
			}
		})
	}
}

func TestVerdictRoundTrip(t *testing.T) {
	key := fill(SessionKeySize, 5)
	for _, v := range []*Verdict{
		{Verifier: "2000", Code: VerdictValid, Message: "document stamped"},
		{Verifier: "2000", Code: VerdictBadChunk},
		{Verifier: "2000", Code: VerdictMalformedReceipt, Message: "<!> and \x00 bytes"},
	} {
		sealed, err := SealVerdict(key, v)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) > MaxVerdictSize {
			t.Errorf("verdict is %d bytes, maximum %d", len(sealed), MaxVerdictSize)
		}
		got, err := OpenVerdict(key, sealed)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *v {
			t.Fatalf("openVerdict = %+v, want %+v", got, v)
		}
		if got.Valid() != (v.Code == VerdictValid) {
			t.Errorf("Valid() = %v for %q", got.Valid(), v.Code)
		}
	}
	if s := (&Verdict{Code: VerdictValid}).String(); s != "valid" {
		t.Errorf("String() = %q", s)
	}
	if s := (&Verdict{Code: VerdictTruncated, Message: "at 5 bytes"}).String(); s != "truncated: at 5 bytes" {
		t.Errorf("String() = %q", s)
	}
}

func TestOpenVerdictRefuses(t *testing.T) {
	key := fill(SessionKeySize, 5)
	sealed, err := SealVerdict(key, &Verdict{Verifier: "2000", Code: VerdictValid, Message: "ok"})
	if err != nil {
		t.Fatal(err)
	}
	chunk := (&ChunkSealer{Aead: testGCM(t, 5)}).Seal([]byte("data"), true)
	for _, tc := range []struct {
		name string
		key  []byte
		in   []byte
	}{
		{"another session key", fill(SessionKeySize, 6), sealed},
		{"flipped byte", key, flip(sealed, 0)},
		{"flipped tag", key, flip(sealed, len(sealed)-1)},
		{"truncated", key, sealed[:len(sealed)-1]},
		{"empty", key, nil},
		{"a chunk as a verdict", key, chunk[1:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := OpenVerdict(tc.key, tc.in)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("openVerdict = %+v, %v; want ErrOpen", v, err)
			}
		})
	}
}

// A verdict that authenticates must still name a valid verifier id and a
// code of §9.5.
func TestOpenVerdictRefusesUnknownContent(t *testing.T) {
	key := fill(SessionKeySize, 5)
	for _, v := range []*Verdict{{Verifier: "../x", Code: VerdictValid}, {Verifier: "2000", Code: "VALID"}, {Verifier: "2000", Code: ""}} {
		sealed, err := SealVerdict(key, v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := OpenVerdict(key, sealed); !errors.Is(err, ErrMalformed) {
			t.Errorf("verdict %+v: %+v, %v; want ErrMalformed", v, got, err)
		}
	}
}

// A verifier's message can quote an attacker's receipt at length; the
// verdict must still fit the frame the requester accepts.
func TestVerdictOfLongMessageFits(t *testing.T) {
	key := fill(SessionKeySize, 5)
	r, _ := sampleReceipt(t)
	r.RequesterID = strings.Repeat("\x01", 10000) // %q quadruples it
	data := r.Marshal()
	if len(data) > MaxReceiptSize {
		t.Fatalf("test receipt is %d bytes", len(data))
	}
	p, err := ParseReceipt(data)
	if err != nil {
		t.Fatal(err)
	}
	_, verr := p.Verify(trustOf(t, testkeys.Directory(t, "server")), nil)
	if !errors.Is(verr, ErrMalformedReceipt) {
		t.Fatalf("Verify = %v", verr)
	}
	v := &Verdict{Verifier: identity.ID(strings.Repeat("v", 64)), Code: VerdictFor(verr), Message: verr.Error()}
	sealed, err := SealVerdict(key, v)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > MaxVerdictSize {
		t.Fatalf("verdict of a %d-byte message is %d bytes, maximum %d", len(v.Message), len(sealed), MaxVerdictSize)
	}
	got, err := OpenVerdict(key, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != VerdictMalformedReceipt || !strings.HasPrefix(v.Message, strings.TrimSuffix(got.Message, "...")) {
		t.Fatalf("verdict %s does not keep the start of the message", got.Code)
	}
}

func TestVerdictFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrHashMismatch, VerdictHashMismatch},
		{ErrBadSignature, VerdictBadSignature},
		{ErrBadProof, VerdictBadProof},
		{ErrUntrustedSigner, VerdictUntrustedSigner},
		{ErrRetiredKey, VerdictRetiredKey},
		{ErrWrongServerKey, VerdictWrongServerKey},
		{ErrMalformedReceipt, VerdictMalformedReceipt},
		{ErrTruncated, VerdictTruncated},
		{ErrChunk, VerdictBadChunk},
		{ErrMalformed, VerdictInternal},
		{ErrOpen, VerdictInternal},
		{io.EOF, VerdictInternal},
		{nil, VerdictInternal},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			if got := VerdictFor(tc.err); got != tc.want {
				t.Errorf("verdictFor(%v) = %q, want %q", tc.err, got, tc.want)
			}
			if tc.err == nil {
				return
			}
			if got := VerdictFor(fmt.Errorf("context: %w", tc.err)); got != tc.want {
				t.Errorf("verdictFor(wrapped %v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func FuzzOpenChunk(f *testing.F) {
	s := &ChunkSealer{Aead: testGCM(f, 1)}
	f.Add(s.Seal([]byte("hello"), false), uint8(0))
	f.Add((&ChunkSealer{Aead: testGCM(f, 1)}).Seal(nil, true), uint8(0))
	f.Add(s.Seal([]byte("second"), true), uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Add(fill(17, 0), uint8(0))
	f.Add(fill(17, 0xff), uint8(3))
	f.Fuzz(func(t *testing.T, frame []byte, index uint8) {
		o := &ChunkOpener{Aead: testGCM(t, 1), Index: uint64(index)}
		pt, final, err := o.Open(frame)
		if err != nil {
			if !errors.Is(err, ErrChunk) {
				t.Fatalf("error %v is not ErrChunk", err)
			}
			if o.Index != uint64(index) || o.Done {
				t.Fatal("a refused chunk advanced the opener")
			}
			return
		}
		if o.Index != uint64(index)+1 || o.Done != final {
			t.Fatalf("opener at %d done %v after chunk %d final %v", o.Index, o.Done, index, final)
		}
		// Sealing is deterministic per index: an authentic frame is exactly
		// what the sealer makes of its plaintext.
		re := (&ChunkSealer{Aead: testGCM(t, 1), index: uint64(index)}).Seal(pt, final)
		if !bytes.Equal(re, frame) {
			t.Fatal("opened a frame the sealer would not make")
		}
		if _, _, err := o.Open(frame); err == nil {
			t.Fatal("the same frame opened twice")
		}
	})
}
