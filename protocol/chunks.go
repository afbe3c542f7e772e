package protocol

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
)

// Relay chunks. A document is sent as frames of at most ChunkSize
// plaintext bytes, each sealed with AES-256-GCM under the relay session
// key. The nonce is the chunk's index and the additional data binds the
// index and the final flag, so a reordered, duplicated or dropped chunk
// fails to open, and a stream that ends before the chunk flagged final is
// truncated.
//
//	frame = flags (1 byte: 0x01 on the last chunk) || GCM(key, nonce, chunk, aad)
//	nonce = 0x00000000 || index (8 bytes, big endian)
//	aad   = "tsnode/relay-chunk/v1" || index (8 bytes) || flags

// ChunkSize is the largest plaintext of one relay chunk.
const ChunkSize = 64 << 10

const (
	chunkAAD        = "tsnode/relay-chunk/v1"
	ChunkFinal      = 0x01
	maxChunkFrame   = 1 + ChunkSize + 16
	dirRequesterOut = 0
	dirVerifierOut  = 1
)

func directionNonce(direction uint32, index uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint32(n, direction)
	binary.BigEndian.PutUint64(n[4:], index)
	return n
}

func chunkAdditionalData(index uint64, flags byte) []byte {
	ad := append([]byte(chunkAAD), make([]byte, 9)...)
	binary.BigEndian.PutUint64(ad[len(chunkAAD):], index)
	ad[len(ad)-1] = flags
	return ad
}

// chunkSealer seals a document's chunks in order.
type ChunkSealer struct {
	Aead  cipher.AEAD
	index uint64
}

func (c *ChunkSealer) Seal(chunk []byte, final bool) []byte {
	var flags byte
	if final {
		flags = ChunkFinal
	}
	out := make([]byte, 1, 1+len(chunk)+c.Aead.Overhead())
	out[0] = flags
	out = c.Aead.Seal(out, directionNonce(dirRequesterOut, c.index), chunk, chunkAdditionalData(c.index, flags))
	c.index++
	return out
}

// chunkOpener opens a document's chunks, in order, once each.
type ChunkOpener struct {
	Aead  cipher.AEAD
	Index uint64
	Done  bool
}

// open returns the chunk's plaintext and whether it was the last one.
func (c *ChunkOpener) Open(frame []byte) ([]byte, bool, error) {
	if c.Done {
		return nil, false, fmt.Errorf("%w: data after the final chunk", ErrChunk)
	}
	if len(frame) < 1+c.Aead.Overhead() {
		return nil, false, fmt.Errorf("%w: chunk %d is %d bytes, too short", ErrChunk, c.Index, len(frame))
	}
	flags := frame[0]
	if flags&^ChunkFinal != 0 {
		return nil, false, fmt.Errorf("%w: chunk %d has unknown flags %#x", ErrChunk, c.Index, flags)
	}
	pt, err := c.Aead.Open(nil, directionNonce(dirRequesterOut, c.Index), frame[1:], chunkAdditionalData(c.Index, flags))
	if err != nil {
		return nil, false, fmt.Errorf("%w: chunk %d does not authenticate (tampered, reordered or duplicated)", ErrChunk, c.Index)
	}
	c.Index++
	c.Done = flags&ChunkFinal != 0
	return pt, c.Done, nil
}
