package protocol

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/internal/testkeys"
)

// Fuzz targets of sealed boxes and of the wire messages of the session,
// stamp and relay protocols, seeded from testdata/vectors. A target that
// takes a sealed input also has a "plain" mode, in which the input is the
// plaintext, sealed correctly first: random bytes almost never open, so
// without it the fuzzer would never reach the decoder inside.

// FuzzOpen: a box opens only whole, with its context, and to a plaintext
// SealOverhead bytes shorter.
func FuzzOpen(f *testing.F) {
	addVectorSeeds(f, "Open")
	key := testkeys.Private(f, "1000")
	const ctx = "tsnode/vectors/v1"
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := Open(key, ctx, b)
		if err != nil {
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("error %v is not ErrOpen", err)
			}
			return
		}
		if len(pt) != len(b)-SealOverhead {
			t.Fatalf("%d-byte box opened to %d bytes", len(b), len(pt))
		}
		if _, err := Open(key, ctx+"x", b); !errors.Is(err, ErrOpen) {
			t.Fatalf("the box opened under another context: %v", err)
		}
		if _, err := Open(key, ctx, b[:len(b)-1]); !errors.Is(err, ErrOpen) {
			t.Fatalf("the box opened cut short: %v", err)
		}
	})
}

func FuzzOpenSessionHello(f *testing.F) {
	for _, v := range vectorsOf(f, "OpenSessionHello") {
		f.Add(v.input(f), false)
	}
	f.Add(EncodeRecord(sessionHelloTag, []byte("1000"), fill(SessionKeySize, 1)), true)
	f.Add(EncodeRecord(sessionHelloTag, []byte("1000"), fill(16, 1)), true)
	key := testkeys.Private(f, "server")
	f.Fuzz(func(t *testing.T, b []byte, plain bool) {
		in := b
		if plain {
			var err error
			if in, err = Seal(&key.PublicKey, sessionHelloTag, b); err != nil {
				t.Fatal(err)
			}
		}
		id, rk, err := OpenSessionHello(key, in)
		if err != nil {
			want := ErrOpen
			if plain {
				want = ErrMalformed
			}
			if !errors.Is(err, want) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is neither %v nor ErrMalformed", err, want)
			}
			return
		}
		if plain && !bytes.Equal(EncodeRecord(sessionHelloTag, []byte(id), rk), b) {
			t.Fatalf("hello %x re-encodes otherwise", b)
		}
	})
}

func FuzzParseSessionRequest(f *testing.F) {
	addVectorSeeds(f, "ParseSessionRequest")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseSessionRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := r.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("request %x re-encodes to %x", b, re)
		}
	})
}

func FuzzParseSessionReply(f *testing.F) {
	addVectorSeeds(f, "ParseSessionReply")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseSessionReply(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		f, err := DecodeRecord(b, SessionReplyTag, 6)
		if err != nil {
			t.Fatalf("parsed, but the record does not decode: %v", err)
		}
		if r.Status != StatusOK {
			if r.Message != string(f[2]) || r.Leaf != nil || r.Proof != nil || r.Head != nil || r.Sig != nil {
				t.Fatalf("refusal decoded as %+v", r)
			}
			return
		}
		if len(r.Proof) > 64 {
			t.Fatalf("a proof of %d hashes", len(r.Proof))
		}
		var proof []byte
		for _, h := range r.Proof {
			proof = append(proof, h[:]...)
		}
		if re := EncodeRecord(SessionReplyTag, u64(r.ID), []byte(r.Status), r.Leaf, proof, r.Head, r.Sig); !bytes.Equal(re, b) {
			t.Fatalf("reply %x re-encodes to %x", b, re)
		}
		if len(proof) != len(r.Proof)*tlog.HashSize {
			t.Fatal("proof length")
		}
	})
}

func FuzzParseStampRequest(f *testing.F) {
	addVectorSeeds(f, "ParseStampRequest")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseStampRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := r.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("request %x re-encodes to %x", b, re)
		}
	})
}

func FuzzParseRelayHeader(f *testing.F) {
	addVectorSeeds(f, "ParseRelayHeader")
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseRelayHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if re := h.Encode(); !bytes.Equal(re, b) {
			t.Fatalf("header %x re-encodes to %x", b, re)
		}
	})
}

// FuzzOpenVerdict: a verdict that opens is what SealVerdict makes of it
// (when its message is short enough not to be cut).
func FuzzOpenVerdict(f *testing.F) {
	for _, v := range vectorsOf(f, "OpenVerdict") {
		f.Add(v.input(f), false)
	}
	f.Add(EncodeRecord(relayVerdictTag, []byte("2000"), []byte(VerdictValid), nil), true)
	f.Add(EncodeRecord(relayVerdictTag, []byte("2000"), []byte(VerdictBadSignature), []byte("no")), true)
	aead, err := NewGCM(vectorVerdictKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, plain bool) {
		in := b
		if plain {
			in = aead.Seal(nil, directionNonce(dirVerifierOut, 0), b, []byte(relayVerdictTag))
		}
		v, err := OpenVerdict(vectorVerdictKey, in)
		if err != nil {
			if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is neither ErrOpen nor ErrMalformed", err)
			}
			if plain && errors.Is(err, ErrOpen) {
				t.Fatalf("a verdict sealed under the key does not open: %v", err)
			}
			return
		}
		if len(v.Message) > maxVerdictMessage {
			return
		}
		re, err := SealVerdict(vectorVerdictKey, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(re, in) {
			t.Fatalf("verdict %+v seals to %x, opened from %x", v, re, in)
		}
	})
}

// FuzzOpenStampResponse: a response to a fixed request of 1000 to
// server; what is accepted answers that request, signed by the trusted
// server, and is accepted again.
func FuzzOpenStampResponse(f *testing.F) {
	key := testkeys.Private(f, "1000")
	self, server := entry(f, "1000"), entry(f, "server")
	s := sampleStatement(f)
	req := &StampRequest{RequesterID: "1000", DocumentHash: s.DocumentHash, Nonce: s.Nonce}
	enc := s.Encode()
	reply := EncodeRecord(StampReplyTag, enc, signAs(f, "server", enc))
	sealed, err := Seal(&key.PublicKey, StampReplyTag, reply)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(EncodeStampResponse(StatusOK, sealed), false)
	f.Add(EncodeStampResponse(StatusBadRequest, []byte("no")), false)
	f.Add(reply, true)
	other := cloneStatement(s)
	other.Serial++
	f.Add(EncodeRecord(StampReplyTag, other.Encode(), signAs(f, "server", enc)), true)
	trust := vectorTrust(f)
	f.Fuzz(func(t *testing.T, b []byte, plain bool) {
		resp := b
		if plain {
			box, err := Seal(&key.PublicKey, StampReplyTag, b)
			if err != nil {
				t.Fatal(err)
			}
			resp = EncodeStampResponse(StatusOK, box)
		}
		st, sig, err := OpenStampResponse(resp, key, req, trust, server, self)
		if err != nil {
			for _, want := range []error{ErrMalformed, ErrRefused, ErrOpen, ErrReplyMismatch, ErrBadSignature, ErrUntrustedSigner, ErrWrongServerKey, ErrRetiredKey} {
				if errors.Is(err, want) {
					if plain && errors.Is(err, ErrOpen) {
						t.Fatalf("a reply sealed to the key does not open: %v", err)
					}
					return
				}
			}
			t.Fatalf("error %v is none of the documented ones", err)
		}
		if !bytes.Equal(st.DocumentHash, req.DocumentHash) || !bytes.Equal(st.Nonce, req.Nonce) || st.ServerID != server.ID || st.RequesterID != self.ID {
			t.Fatalf("accepted a stamp that does not answer the request: %+v", st)
		}
		if _, err := trust.CheckStatement(st.Encode(), sig); err != nil {
			t.Fatalf("accepted a stamp whose signature does not check: %v", err)
		}
		if _, _, err := OpenStampResponse(resp, key, req, trust, server, self); err != nil {
			t.Fatalf("accepted once, then refused: %v", err)
		}
	})
}
