package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// Fuzz targets of the session's accept (§7.3) and encrypted frames
// (§7.4). As in fuzz_wire_test.go, "plain" inputs are sealed correctly
// first, so that the fuzzer reaches what lies inside the encryption.

// FuzzOpenSessionAccept: an accept yields a 32-byte reply key whose
// record is the sealed plaintext byte for byte; a refusal wraps
// ErrRefused and quotes the server; anything else is ErrMalformed or
// ErrOpen, and a key sealed to the requester always opens.
func FuzzOpenSessionAccept(f *testing.F) {
	key := testkeys.Private(f, "1000")
	ok, err := SealSessionAccept(&key.PublicKey, fill(SessionKeySize, 7))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ok, false)
	f.Add(EncodeSessionRefusal(StatusUnknownID, "unknown id \"9\""), false)
	f.Add(EncodeSessionRefusal(StatusOK, "not sealed"), false)
	f.Add(EncodeRecord(SessionAcceptTag, []byte(StatusOK)), false)
	f.Add(EncodeRecord(SessionKeyTag, fill(SessionKeySize, 7)), true)
	f.Add(EncodeRecord(SessionKeyTag, fill(16, 7)), true)
	f.Add(EncodeRecord(SessionKeyTag, fill(SessionKeySize, 7), nil), true)
	f.Add(EncodeRecord(sessionHelloTag, fill(SessionKeySize, 7)), true)
	f.Fuzz(func(t *testing.T, b []byte, plain bool) {
		in := b
		if plain {
			sealed, err := Seal(&key.PublicKey, SessionKeyTag, b)
			if err != nil {
				t.Fatal(err)
			}
			in = EncodeRecord(SessionAcceptTag, []byte(StatusOK), sealed)
		}
		rk, err := OpenSessionAccept(key, in, "server")
		if err != nil {
			switch {
			case errors.Is(err, ErrRefused):
				fields, derr := DecodeRecord(in, SessionAcceptTag, 2)
				if derr != nil || string(fields[0]) == StatusOK || !strings.Contains(err.Error(), "by server: ") {
					t.Fatalf("refused %x: %v", in, err)
				}
			case errors.Is(err, ErrOpen):
				if plain {
					t.Fatalf("a key sealed to the requester does not open: %v", err)
				}
			case !errors.Is(err, ErrMalformed):
				t.Fatalf("error %v is none of the documented ones", err)
			}
			return
		}
		if len(rk) != SessionKeySize {
			t.Fatalf("a %d-byte reply key", len(rk))
		}
		if plain && !bytes.Equal(EncodeRecord(SessionKeyTag, rk), b) {
			t.Fatalf("key record %x re-encodes otherwise", b)
		}
		if _, err := OpenSessionAccept(testkeys.Private(t, "2000"), in, "server"); !errors.Is(err, ErrOpen) {
			t.Fatalf("the accept opened with another requester's key: %v", err)
		}
	})
}

// FuzzSessionCipherOpen: frame seq of a direction opens only at seq,
// under that direction's key and tag, to the plaintext that seals to it;
// never twice.
func FuzzSessionCipherOpen(f *testing.F) {
	k := fill(SessionKeySize, 9)
	for i, pt := range [][]byte{(&SessionRequest{ID: 1, Hash: fill(HashSize, 1), Nonce: fill(NonceSize, 2)}).Encode(), nil, []byte("x")} {
		f.Add(pt, uint8(i), true)
		c, err := NewSessionCipher(k, SessionRequestTag)
		if err != nil {
			f.Fatal(err)
		}
		c.seq = uint64(i)
		f.Add(c.Seal(pt), uint8(i), false)
	}
	f.Add(fill(15, 0), uint8(0), false)
	f.Add(fill(16, 0), uint8(0), false)
	f.Fuzz(func(t *testing.T, b []byte, seq uint8, plain bool) {
		sealer := func(tag string) *SessionCipher {
			c, err := NewSessionCipher(k, tag)
			if err != nil {
				t.Fatal(err)
			}
			c.seq = uint64(seq)
			return c
		}
		ct := b
		if plain {
			ct = sealer(SessionRequestTag).Seal(b)
		}
		in := sealer(SessionRequestTag)
		pt, err := in.Open(ct)
		if err != nil {
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("error %v is not ErrOpen", err)
			}
			if plain {
				t.Fatalf("frame %d sealed under the key does not open: %v", seq, err)
			}
			return
		}
		if in.seq != uint64(seq)+1 {
			t.Fatalf("opener at %d after frame %d", in.seq, seq)
		}
		if re := sealer(SessionRequestTag).Seal(pt); !bytes.Equal(re, ct) {
			t.Fatalf("frame %x opened to %x, which seals to %x", ct, pt, re)
		}
		if _, err := in.Open(ct); !errors.Is(err, ErrOpen) {
			t.Fatalf("frame %d opened again as frame %d: %v", seq, seq+1, err)
		}
		if _, err := sealer(SessionReplyTag).Open(ct); !errors.Is(err, ErrOpen) {
			t.Fatalf("a request frame opened as a reply frame: %v", err)
		}
	})
}
