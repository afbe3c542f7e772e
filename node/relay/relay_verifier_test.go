package relay

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tsnode/tsnode/protocol"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
)

// The verifier's relay handler over a real host, fed by a hand-made
// sender that can break the framing in every way.

type relayFixture struct {
	verifier host.Host
	svc      *Service
	store    string
	receipt  []byte // a v2 receipt of doc
	doc      []byte
	mu       sync.Mutex
	verdicts []string
}

func newRelayFixture(t *testing.T, opts ...Option) *relayFixture {
	t.Helper()
	f := &relayFixture{store: t.TempDir()}
	f.doc = make([]byte, 2*protocol.ChunkSize+100) // three chunks
	for i := range f.doc {
		f.doc[i] = byte(i * 7)
	}
	h := sha256.Sum256(f.doc)
	f.receipt = stampDoc(t, h[:]).Marshal()

	f.verifier = testnet.NewHost(t, "2000", testnet.Transports[0].Listen)
	dir := testkeys.Directory(t, "server", "1000", "2000")
	svc, err := New(f.verifier, testkeys.Private(t, "2000"), testnet.Entry(t, "2000"), dir, testnet.Trust(t, dir),
		append([]Option{WithStore(f.store),
			WithVerdictHook(func(_ peer.ID, v *protocol.Verdict) {
				f.mu.Lock()
				f.verdicts = append(f.verdicts, v.Code)
				f.mu.Unlock()
			})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	f.svc = svc
	return f
}

// relayRaw sends a header sealed to sealTo, then the frames, and reads
// the verdict.
func relayRaw(t *testing.T, from host.Host, to peer.ID, sealTo *rsa.PublicKey, hdr *protocol.RelayHeader, frames [][]byte, raw ...byte) (*protocol.Verdict, error) {
	t.Helper()
	s := testnet.RawStream(t, from, to, protocol.RelayProtocolID)
	sealedHdr, err := protocol.Seal(sealTo, protocol.RelayHeaderTag, hdr.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	protocol.WriteFrame(&buf, sealedHdr)
	for _, fr := range frames {
		protocol.WriteFrame(&buf, fr)
	}
	buf.Write(raw)
	// The verifier may reset before reading everything.
	_, _ = s.Write(buf.Bytes())
	_ = s.CloseWrite()
	frame, err := protocol.ReadFrame(bufio.NewReader(s), protocol.MaxVerdictSize)
	if err != nil {
		return nil, err
	}
	return protocol.OpenVerdict(hdr.SessionKey, frame)
}

func framed(body []byte) []byte {
	var b bytes.Buffer
	protocol.WriteFrame(&b, body)
	return b.Bytes()
}

// chunkFrames seals doc as chunks of ChunkSize under key.
func chunkFrames(t testing.TB, key, doc []byte) [][]byte {
	aead, err := protocol.NewGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &protocol.ChunkSealer{Aead: aead}
	var frames [][]byte
	for off := 0; ; off += protocol.ChunkSize {
		end := min(off+protocol.ChunkSize, len(doc))
		frames = append(frames, s.Seal(doc[off:end], end == len(doc)))
		if end == len(doc) {
			return frames
		}
	}
}

// smallChunkFrames seals doc as chunks of n bytes, as no honest sender
// does (every chunk but the last must hold ChunkSize bytes).
func smallChunkFrames(t testing.TB, key, doc []byte, n int) [][]byte {
	aead, err := protocol.NewGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &protocol.ChunkSealer{Aead: aead}
	var frames [][]byte
	for off := 0; ; off += n {
		end := min(off+n, len(doc))
		frames = append(frames, s.Seal(doc[off:end], end == len(doc)))
		if end == len(doc) {
			return frames
		}
	}
}

// emptyChunk is an empty chunk 0 that is not final.
func emptyChunk(t testing.TB, key []byte) []byte {
	aead, err := protocol.NewGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return (&protocol.ChunkSealer{Aead: aead}).Seal(nil, false)
}

func TestVerifierHandlerViolations(t *testing.T) {
	f := newRelayFixture(t)
	sender := testnet.ClientOf(t, "1000", f.verifier)
	verifierPub := testnet.Entry(t, "2000").PublicKey
	key := fill(protocol.SessionKeySize, 0x42)
	good := chunkFrames(t, key, f.doc)
	if len(good) != 3 {
		t.Fatalf("%d chunks, want 3", len(good))
	}
	otherKeyFrames := chunkFrames(t, fill(protocol.SessionKeySize, 0x43), f.doc)
	altered := bytes.Clone(f.doc)
	altered[protocol.ChunkSize+5] ^= 1
	flagFlipped := bytes.Clone(good[2])
	flagFlipped[0] ^= protocol.ChunkFinal
	hdr := func(sender identity.ID, size uint64, receipt []byte) *protocol.RelayHeader {
		return &protocol.RelayHeader{SenderID: sender, SessionKey: key, Receipt: receipt, DocumentSize: size}
	}
	size := uint64(len(f.doc))
	rc, err := protocol.ParseReceipt(f.receipt)
	if err != nil {
		t.Fatal(err)
	}
	rc.InclusionProof = append(rc.InclusionProof, hex.EncodeToString(good[0][:32]))
	badProof := rc.Marshal()
	unknownFormat := bytes.Replace(f.receipt, []byte(protocol.ReceiptFormatV2), []byte("tsnode-receipt-v3"), 1)

	for _, c := range []struct {
		name   string
		from   identity.ID
		hdr    *protocol.RelayHeader
		frames [][]byte
		raw    []byte // sent after the frames
		want   string
	}{
		{"valid", "1000", hdr("1000", size, f.receipt), good, nil, protocol.VerdictValid},
		{"no chunks", "1000", hdr("1000", size, f.receipt), nil, nil, protocol.VerdictTruncated},
		{"final chunk missing", "1000", hdr("1000", size, f.receipt), good[:2], nil, protocol.VerdictTruncated},
		{"stream ends inside a chunk", "1000", hdr("1000", size, f.receipt), good[:1], framed(good[1])[:1000], protocol.VerdictTruncated},
		{"chunks reordered", "1000", hdr("1000", size, f.receipt), [][]byte{good[1], good[0], good[2]}, nil, protocol.VerdictBadChunk},
		{"chunk duplicated", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], good[0], good[1], good[2]}, nil, protocol.VerdictBadChunk},
		{"chunk dropped", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], good[2]}, nil, protocol.VerdictBadChunk},
		{"final flag removed", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], good[1], flagFlipped}, nil, protocol.VerdictBadChunk},
		{"final flag on a middle chunk", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], func() []byte { b := bytes.Clone(good[1]); b[0] = protocol.ChunkFinal; return b }(), good[2]}, nil, protocol.VerdictBadChunk},
		{"chunk under another key", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], otherKeyFrames[1], good[2]}, nil, protocol.VerdictBadChunk},
		{"chunk too short", "1000", hdr("1000", size, f.receipt), [][]byte{good[0][:10]}, nil, protocol.VerdictBadChunk},
		{"sender claims another id", "server", hdr("1000", size, f.receipt), good, nil, protocol.VerdictPeerMismatch},
		{"sender claims an unknown id", "1000", hdr("nobody", size, f.receipt), good, nil, protocol.VerdictPeerMismatch},
		{"fewer bytes than announced", "1000", hdr("1000", size+1, f.receipt), good, nil, protocol.VerdictSizeMismatch},
		{"more bytes than announced", "1000", hdr("1000", size-1, f.receipt), good, nil, protocol.VerdictSizeMismatch},
		{"document altered", "1000", hdr("1000", size, f.receipt), chunkFrames(t, key, altered), nil, protocol.VerdictHashMismatch},
		{"receipt with a bad proof", "1000", hdr("1000", size, badProof), good, nil, protocol.VerdictBadProof},
		{"receipt of an unknown format", "1000", hdr("1000", size, unknownFormat), good, nil, protocol.VerdictMalformedReceipt},
		{"receipt not JSON", "1000", hdr("1000", size, []byte("{")), good, nil, protocol.VerdictMalformedReceipt},
		{"short chunk before the last", "1000", hdr("1000", size, f.receipt), smallChunkFrames(t, key, f.doc, 1000), nil, protocol.VerdictBadChunk},
		{"empty chunk before the last", "1000", hdr("1000", size, f.receipt), [][]byte{emptyChunk(t, key)}, nil, protocol.VerdictBadChunk},
		{"larger than the verifier accepts", "1000", hdr("1000", protocol.DefaultMaxDocumentSize+1, f.receipt), good, nil, protocol.VerdictTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := sender
			if c.from != "1000" {
				from = testnet.ClientOf(t, c.from, f.verifier)
			}
			v, err := relayRaw(t, from, f.verifier.ID(), verifierPub, c.hdr, c.frames, c.raw...)
			if err != nil {
				t.Fatalf("no verdict: %v", err)
			}
			if v.Code != c.want || v.Verifier != "2000" {
				t.Fatalf("verdict %v from %s, want %s", v, v.Verifier, c.want)
			}
		})
	}
	// Only the valid document was kept, and nothing was left spooled.
	entries, err := os.ReadDir(f.store)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("store holds %v, want one document", entries)
	}
	stored, err := os.ReadFile(filepath.Join(f.store, entries[0].Name(), "document"))
	if err != nil || !bytes.Equal(stored, f.doc) {
		t.Fatalf("stored document differs (%v)", err)
	}
}

// Framing the verifier cannot read at all is answered with a reset and
// no verdict.
func TestVerifierHandlerResets(t *testing.T) {
	f := newRelayFixture(t)
	sender := testnet.ClientOf(t, "1000", f.verifier)
	key := fill(protocol.SessionKeySize, 0x42)
	hdr := &protocol.RelayHeader{SenderID: "1000", SessionKey: key, Receipt: f.receipt, DocumentSize: uint64(len(f.doc))}
	good := chunkFrames(t, key, f.doc)

	t.Run("header sealed to the wrong key", func(t *testing.T) {
		_, err := relayRaw(t, sender, f.verifier.ID(), testnet.Entry(t, "outsider").PublicKey, hdr, good)
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("got %v, want a reset", err)
		}
	})
	t.Run("oversized chunk frame", func(t *testing.T) {
		s := testnet.RawStream(t, sender, f.verifier.ID(), protocol.RelayProtocolID)
		sealedHdr, _ := protocol.Seal(testnet.Entry(t, "2000").PublicKey, protocol.RelayHeaderTag, hdr.Encode())
		var buf bytes.Buffer
		protocol.WriteFrame(&buf, sealedHdr)
		buf.Write(testnet.FrameHeader(protocol.MaxRelayFrameSize + 1))
		if _, err := s.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		testnet.ExpectReset(t, s)
	})
	t.Run("oversized header frame", func(t *testing.T) {
		s := testnet.RawStream(t, sender, f.verifier.ID(), protocol.RelayProtocolID)
		if _, err := s.Write(testnet.FrameHeader(protocol.MaxRelayHeaderSize + 1)); err != nil {
			t.Fatal(err)
		}
		testnet.ExpectReset(t, s)
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.verdicts) != 0 {
		t.Fatalf("verdicts %v for streams that were reset", f.verdicts)
	}
}

// The real Client with a v2 receipt: valid, then refused when the
// proof is altered (the head is cached by then).
func TestRelayClientLogReceipt(t *testing.T) {
	f := newRelayFixture(t)
	c := &Client{Host: testnet.ClientOf(t, "1000", f.verifier), Self: testnet.Entry(t, "1000"), Verifier: testnet.Entry(t, "2000")}
	rc, err := protocol.ParseReceipt(f.receipt)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Relay(testnet.Ctx(t), rc, bytes.NewReader(f.doc), int64(len(f.doc)))
	if err != nil || !v.Valid() {
		t.Fatalf("verdict %v, %v", v, err)
	}
	// The same stamp with another nonce, under the same head and proof.
	st, err := rc.Statement()
	if err != nil {
		t.Fatal(err)
	}
	st.Nonce[len(st.Nonce)-1] ^= 0xff
	sth, err := rc.TreeHeadOf()
	if err != nil {
		t.Fatal(err)
	}
	proof, err := rc.ProofOf()
	if err != nil {
		t.Fatal(err)
	}
	bad := protocol.NewLogReceipt(st, proof, sth)
	v, err = c.Relay(testnet.Ctx(t), bad, bytes.NewReader(f.doc), int64(len(f.doc)))
	if err != nil || v.Code != protocol.VerdictBadProof {
		t.Fatalf("altered nonce: verdict %v, %v; want %s", v, err, protocol.VerdictBadProof)
	}
}
