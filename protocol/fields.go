// Package protocol holds tsnode's wire formats and cryptography: framing,
// field records, hybrid sealing, the signed timestamp statement, receipts,
// and the stamp and relay stream protocols. docs/PROTOCOL.md specifies
// every byte.
package protocol

import (
	"encoding/binary"
	"fmt"
)

// A record is a sequence of fields, each a 4-byte big-endian length
// followed by that many bytes. The first field is always the record's
// ASCII type tag, so a record of one kind can never be read as another.
// It is the one encoding used for signing and on the wire: unambiguous,
// unlike the prototype's "<!>" delimiter.

// EncodeRecord encodes tag and fields as a record.
func EncodeRecord(tag string, fields ...[]byte) []byte {
	n := 4 + len(tag)
	for _, f := range fields {
		n += 4 + len(f)
	}
	out := make([]byte, 0, n)
	out = appendField(out, []byte(tag))
	for _, f := range fields {
		out = appendField(out, f)
	}
	return out
}

func appendField(b, f []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
	return append(b, f...)
}

// DecodeRecord parses a record of the given tag with exactly n fields
// after the tag. The returned fields alias b.
func DecodeRecord(b []byte, tag string, n int) ([][]byte, error) {
	var fields [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: %s: truncated field length", ErrMalformed, tag)
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: %s: field %d claims %d bytes, %d left", ErrMalformed, tag, len(fields), l, len(b))
		}
		fields = append(fields, b[:l:l])
		b = b[l:]
		if len(fields) > n+1 {
			break
		}
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: empty record, want %s", ErrMalformed, tag)
	}
	if string(fields[0]) != tag {
		return nil, fmt.Errorf("%w: record type %q, want %q", ErrMalformed, truncate(fields[0]), tag)
	}
	if len(fields) != n+1 {
		return nil, fmt.Errorf("%w: %s: %d fields, want %d", ErrMalformed, tag, len(fields)-1, n)
	}
	return fields[1:], nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func parseU64(name string, b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %s is %d bytes, want 8", ErrMalformed, name, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
