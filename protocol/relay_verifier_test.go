package protocol

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

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
	"tsnode/internal/testkeys"
)

// The verifier's relay handler over a real host, fed by a hand-made
// sender that can break the framing in every way.

type relayFixture struct {
	verifier host.Host
	store    string
	receipt  []byte // a v2 receipt of doc
	doc      []byte
	mu       sync.Mutex
	verdicts []string
}

func newRelayFixture(t *testing.T) *relayFixture {
	t.Helper()
	f := &relayFixture{store: t.TempDir()}
	f.doc = make([]byte, 2*ChunkSize+100) // three chunks
	for i := range f.doc {
		f.doc[i] = byte(i * 7)
	}
	lg := openLog(t, t.TempDir())
	signer := newSigner(t, lg, nil)
	h := sha256.Sum256(f.doc)
	ch := make(chan stampResult, 1)
	signer.Submit(entry(t, "1000"), h[:], docNonce(0), func(st *LogStamp, err error) { ch <- stampResult{st, err} })
	st, err := wait(t, ch)
	if err != nil {
		t.Fatal(err)
	}
	f.receipt = st.Receipt().Marshal()

	f.verifier = newHost(t, "2000", testTransports[0].listen)
	dir := testkeys.Directory(t, "server", "1000", "2000")
	v := &Verifier{
		Key: testkeys.Private(t, "2000"), Self: entry(t, "2000"),
		Dir: dir, Trust: trustOf(t, dir),
		StoreDir: f.store, Heads: NewHeadCache(8),
		OnVerdict: func(_ peer.ID, v *Verdict) {
			f.mu.Lock()
			f.verdicts = append(f.verdicts, v.Code)
			f.mu.Unlock()
		},
	}
	f.verifier.SetStreamHandler(RelayProtocolID, v.Handler())
	return f
}

// relayRaw sends a header sealed to sealTo, then the frames, and reads
// the verdict.
func relayRaw(t *testing.T, from host.Host, to peer.ID, sealTo *rsa.PublicKey, hdr *relayHeader, frames [][]byte, raw ...byte) (*Verdict, error) {
	t.Helper()
	s := rawStream(t, from, to, RelayProtocolID)
	sealedHdr, err := Seal(sealTo, relayHeaderTag, hdr.encode())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	WriteFrame(&buf, sealedHdr)
	for _, fr := range frames {
		WriteFrame(&buf, fr)
	}
	buf.Write(raw)
	// The verifier may reset before reading everything.
	_, _ = s.Write(buf.Bytes())
	_ = s.CloseWrite()
	frame, err := ReadFrame(bufio.NewReader(s), MaxVerdictSize)
	if err != nil {
		return nil, err
	}
	return openVerdict(hdr.SessionKey, frame)
}

func framed(body []byte) []byte {
	var b bytes.Buffer
	WriteFrame(&b, body)
	return b.Bytes()
}

// chunkFrames seals doc as chunks of ChunkSize under key.
func chunkFrames(t testing.TB, key, doc []byte) [][]byte {
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &chunkSealer{aead: aead}
	var frames [][]byte
	for off := 0; ; off += ChunkSize {
		end := min(off+ChunkSize, len(doc))
		frames = append(frames, s.seal(doc[off:end], end == len(doc)))
		if end == len(doc) {
			return frames
		}
	}
}

// smallChunkFrames seals doc as chunks of n bytes, as no honest sender
// does (every chunk but the last must hold ChunkSize bytes).
func smallChunkFrames(t testing.TB, key, doc []byte, n int) [][]byte {
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	s := &chunkSealer{aead: aead}
	var frames [][]byte
	for off := 0; ; off += n {
		end := min(off+n, len(doc))
		frames = append(frames, s.seal(doc[off:end], end == len(doc)))
		if end == len(doc) {
			return frames
		}
	}
}

// emptyChunk is an empty chunk 0 that is not final.
func emptyChunk(t testing.TB, key []byte) []byte {
	aead, err := newGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return (&chunkSealer{aead: aead}).seal(nil, false)
}

func TestVerifierHandlerViolations(t *testing.T) {
	f := newRelayFixture(t)
	sender := clientOf(t, "1000", f.verifier)
	verifierPub := entry(t, "2000").PublicKey
	key := fill(sessionKeySize, 0x42)
	good := chunkFrames(t, key, f.doc)
	if len(good) != 3 {
		t.Fatalf("%d chunks, want 3", len(good))
	}
	otherKeyFrames := chunkFrames(t, fill(sessionKeySize, 0x43), f.doc)
	altered := bytes.Clone(f.doc)
	altered[ChunkSize+5] ^= 1
	flagFlipped := bytes.Clone(good[2])
	flagFlipped[0] ^= chunkFinal
	hdr := func(sender identity.ID, size uint64, receipt []byte) *relayHeader {
		return &relayHeader{SenderID: sender, SessionKey: key, Receipt: receipt, DocumentSize: size}
	}
	size := uint64(len(f.doc))
	rc, err := ParseReceipt(f.receipt)
	if err != nil {
		t.Fatal(err)
	}
	rc.InclusionProof = append(rc.InclusionProof, hex.EncodeToString(good[0][:32]))
	badProof := rc.Marshal()
	unknownFormat := bytes.Replace(f.receipt, []byte(ReceiptFormatV2), []byte("tsnode-receipt-v3"), 1)

	for _, c := range []struct {
		name   string
		from   identity.ID
		hdr    *relayHeader
		frames [][]byte
		raw    []byte // sent after the frames
		want   string
	}{
		{"valid", "1000", hdr("1000", size, f.receipt), good, nil, VerdictValid},
		{"no chunks", "1000", hdr("1000", size, f.receipt), nil, nil, VerdictTruncated},
		{"final chunk missing", "1000", hdr("1000", size, f.receipt), good[:2], nil, VerdictTruncated},
		{"stream ends inside a chunk", "1000", hdr("1000", size, f.receipt), good[:1], framed(good[1])[:1000], VerdictTruncated},
		{"chunks reordered", "1000", hdr("1000", size, f.receipt), [][]byte{good[1], good[0], good[2]}, nil, VerdictBadChunk},
		{"chunk duplicated", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], good[0], good[1], good[2]}, nil, VerdictBadChunk},
		{"chunk dropped", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], good[2]}, nil, VerdictBadChunk},
		{"final flag removed", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], good[1], flagFlipped}, nil, VerdictBadChunk},
		{"final flag on a middle chunk", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], func() []byte { b := bytes.Clone(good[1]); b[0] = chunkFinal; return b }(), good[2]}, nil, VerdictBadChunk},
		{"chunk under another key", "1000", hdr("1000", size, f.receipt), [][]byte{good[0], otherKeyFrames[1], good[2]}, nil, VerdictBadChunk},
		{"chunk too short", "1000", hdr("1000", size, f.receipt), [][]byte{good[0][:10]}, nil, VerdictBadChunk},
		{"sender claims another id", "server", hdr("1000", size, f.receipt), good, nil, VerdictPeerMismatch},
		{"sender claims an unknown id", "1000", hdr("nobody", size, f.receipt), good, nil, VerdictPeerMismatch},
		{"fewer bytes than announced", "1000", hdr("1000", size+1, f.receipt), good, nil, VerdictSizeMismatch},
		{"more bytes than announced", "1000", hdr("1000", size-1, f.receipt), good, nil, VerdictSizeMismatch},
		{"document altered", "1000", hdr("1000", size, f.receipt), chunkFrames(t, key, altered), nil, VerdictHashMismatch},
		{"receipt with a bad proof", "1000", hdr("1000", size, badProof), good, nil, VerdictBadProof},
		{"receipt of an unknown format", "1000", hdr("1000", size, unknownFormat), good, nil, VerdictMalformedReceipt},
		{"receipt not JSON", "1000", hdr("1000", size, []byte("{")), good, nil, VerdictMalformedReceipt},
		{"short chunk before the last", "1000", hdr("1000", size, f.receipt), smallChunkFrames(t, key, f.doc, 1000), nil, VerdictBadChunk},
		{"empty chunk before the last", "1000", hdr("1000", size, f.receipt), [][]byte{emptyChunk(t, key)}, nil, VerdictBadChunk},
		{"larger than the verifier accepts", "1000", hdr("1000", DefaultMaxDocumentSize+1, f.receipt), good, nil, VerdictTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			from := sender
			if c.from != "1000" {
				from = clientOf(t, c.from, f.verifier)
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
	sender := clientOf(t, "1000", f.verifier)
	key := fill(sessionKeySize, 0x42)
	hdr := &relayHeader{SenderID: "1000", SessionKey: key, Receipt: f.receipt, DocumentSize: uint64(len(f.doc))}
	good := chunkFrames(t, key, f.doc)

	t.Run("header sealed to the wrong key", func(t *testing.T) {
		_, err := relayRaw(t, sender, f.verifier.ID(), entry(t, "outsider").PublicKey, hdr, good)
		if !errors.Is(err, network.ErrReset) {
			t.Fatalf("got %v, want a reset", err)
		}
	})
	t.Run("oversized chunk frame", func(t *testing.T) {
		s := rawStream(t, sender, f.verifier.ID(), RelayProtocolID)
		sealedHdr, _ := Seal(entry(t, "2000").PublicKey, relayHeaderTag, hdr.encode())
		var buf bytes.Buffer
		WriteFrame(&buf, sealedHdr)
		buf.Write(frameHeader(MaxRelayFrameSize + 1))
		if _, err := s.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		expectReset(t, s)
	})
	t.Run("oversized header frame", func(t *testing.T) {
		s := rawStream(t, sender, f.verifier.ID(), RelayProtocolID)
		if _, err := s.Write(frameHeader(MaxRelayHeaderSize + 1)); err != nil {
			t.Fatal(err)
		}
		expectReset(t, s)
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.verdicts) != 0 {
		t.Fatalf("verdicts %v for streams that were reset", f.verdicts)
	}
}

// The real RelayClient with a v2 receipt: valid, then refused when the
// proof is altered (the head is cached by then).
func TestRelayClientLogReceipt(t *testing.T) {
	f := newRelayFixture(t)
	c := &RelayClient{Host: clientOf(t, "1000", f.verifier), Self: entry(t, "1000"), Verifier: entry(t, "2000")}
	rc, err := ParseReceipt(f.receipt)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Relay(testCtx(t), rc, bytes.NewReader(f.doc), int64(len(f.doc)))
	if err != nil || !v.Valid() {
		t.Fatalf("verdict %v, %v", v, err)
	}
	bad := cloneReceipt(rc)
	bad.Leaf = b64(flip(unb64(t, rc.Leaf), len(unb64(t, rc.Leaf))-1))
	if st, err := ParseLeaf(unb64(t, bad.Leaf)); err == nil {
		setReadable(bad, st)
	}
	v, err = c.Relay(testCtx(t), bad, bytes.NewReader(f.doc), int64(len(f.doc)))
	if err != nil || v.Code != VerdictBadProof {
		t.Fatalf("altered nonce: verdict %v, %v; want %s", v, err, VerdictBadProof)
	}
}
