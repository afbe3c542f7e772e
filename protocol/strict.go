package protocol

import (
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Decoders for the text encodings of §1.1 that accept exactly one
// spelling: the standard library's are laxer than the specification.

// decodeBase64Strict decodes standard base64 with padding. It refuses
// line breaks, which base64.StdEncoding silently skips.
func decodeBase64Strict(s string) ([]byte, error) {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return nil, fmt.Errorf("line break at offset %d", i)
	}
	return base64.StdEncoding.DecodeString(s)
}

// decodeHexHash decodes a hash spelled as 64 lowercase hex digits;
// hex.DecodeString would also take uppercase.
func decodeHexHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("%d hex digits, want %d", len(s), 2*len(h))
	}
	for i := range len(s) {
		var d byte
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		default:
			return tlog.Hash{}, fmt.Errorf("%q at offset %d is not a lowercase hex digit", c, i)
		}
		h[i/2] = h[i/2]<<4 | d
	}
	return h, nil
}

// decodeHashList decodes a JSON list of hex hashes (a receipt's
// inclusion_proof, a consistency file's proof); member names it in
// errors.
func decodeHashList(member string, list []string) ([]tlog.Hash, error) {
	hashes := make([]tlog.Hash, len(list))
	for i, s := range list {
		h, err := decodeHexHash(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d] is not a %d-byte lowercase hex hash: %v", ErrMalformedReceipt, member, i, tlog.HashSize, err)
		}
		hashes[i] = h
	}
	return hashes, nil
}
