package protocol

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// FuzzParseLogLeafRequest and FuzzParseLogLeafResponse: the decoders of
// /tsnode/log/1.1.0 (§8.5) never panic, refuse with ErrMalformed, and
// what they accept re-encodes to the same bytes.
func FuzzParseLogLeafRequest(f *testing.F) {
	f.Add(EncodeLogLeafRequest(0))
	f.Add(EncodeLogLeafRequest(1 << 40))
	f.Add(EncodeLogRequest(1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		serial, err := ParseLogLeafRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(EncodeLogLeafRequest(serial), b) {
			t.Fatalf("%x parses as serial %d, which encodes otherwise", b, serial)
		}
	})
}

func FuzzParseLogLeafResponse(f *testing.F) {
	f.Add((&LogLeafResponse{Status: StatusOK, Head: []byte("head"), Sig: []byte("sig"), Leaf: []byte("leaf"), Proof: tlog.RecordProof{{1}, {2}}}).Encode())
	f.Add((&LogLeafResponse{Status: StatusBadRequest, Message: LogEmptyMessage}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseLogLeafResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(r.Encode(), b) {
			t.Fatalf("%x parses, but encodes as %x", b, r.Encode())
		}
	})
}
