package protocol

import (
	"bufio"
	"cmp"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"tsnode/identity"
)

// Verifier checks relayed documents: it recomputes the hash from the bytes
// it receives and verifies the server's signature with the server key
// from its own directory.
type Verifier struct {
	Key  *rsa.PrivateKey
	Self identity.Entry
	Dir  *identity.Directory
	// Trust decides whose signatures count on a relayed receipt.
	Trust *Trust
	// StoreDir, if set, keeps each valid document with its receipt in
	// StoreDir/<server id>-<serial>/.
	StoreDir string
	// OnVerdict, if set, is told every verdict.
	OnVerdict func(remote peer.ID, v *Verdict)
	// Heads, if set, remembers verified tree heads across relays.
	Heads *HeadCache
	// MaxDocumentSize refuses larger documents; 0 means
	// DefaultMaxDocumentSize.
	MaxDocumentSize uint64
}

// Handler returns the relay stream handler.
func (v *Verifier) Handler() network.StreamHandler {
	return func(s network.Stream) {
		release, err := prepareStream(s, RelayServiceName, MaxRelayHeaderSize+MaxRelayFrameSize)
		if err != nil {
			log.Debugw("relay stream refused", "peer", s.Conn().RemotePeer(), "err", err)
			s.Reset()
			return
		}
		defer release()
		remote := s.Conn().RemotePeer()
		r := bufio.NewReaderSize(s, 4096)

		_ = s.SetReadDeadline(time.Now().Add(RelayIdleTimeout))
		frame, err := ReadFrame(r, MaxRelayHeaderSize)
		if err != nil {
			log.Warnw("relay: bad header frame; resetting stream", "peer", remote, "err", err)
			s.Reset()
			return
		}
		plain, err := Open(v.Key, relayHeaderTag, frame)
		if err != nil {
			log.Warnw("relay: header does not open; resetting stream", "peer", remote, "err", err)
			s.Reset()
			return
		}
		hdr, err := parseRelayHeader(plain)
		if err != nil {
			log.Warnw("relay: malformed header; resetting stream", "peer", remote, "err", err)
			s.Reset()
			return
		}
		verdict, violation := v.receive(s, r, remote, hdr)
		if violation != nil {
			log.Warnw("relay: protocol violation; resetting stream", "peer", remote, "err", violation)
			s.Reset()
			return
		}
		verdict.Verifier = v.Self.ID
		if v.OnVerdict != nil {
			v.OnVerdict(remote, verdict)
		}
		log.Infow("verdict", "peer", remote, "sender", hdr.SenderID, "verdict", verdict.Code, "detail", verdict.Message)
		out, err := sealVerdict(hdr.SessionKey, verdict)
		if err != nil {
			s.Reset()
			return
		}
		_ = s.SetWriteDeadline(time.Now().Add(RelayIdleTimeout))
		if err := WriteFrame(s, out); err != nil {
			s.Reset()
			return
		}
		s.Close()
	}
}

// receive reads the document and judges it. A non-nil violation means the
// peer broke the framing and gets a reset instead of a verdict.
func (v *Verifier) receive(s network.Stream, r *bufio.Reader, remote peer.ID, hdr *relayHeader) (*Verdict, error) {
	sender, err := v.Dir.Lookup(hdr.SenderID)
	if err != nil || sender.PeerID != remote {
		return &Verdict{Code: VerdictPeerMismatch, Message: fmt.Sprintf("relay claims sender %q but came from peer %s", hdr.SenderID, remote)}, nil
	}
	maxSize := cmp.Or(v.MaxDocumentSize, DefaultMaxDocumentSize)
	if hdr.DocumentSize > maxSize {
		return &Verdict{Code: VerdictTooLarge, Message: fmt.Sprintf("document of %d bytes, this verifier accepts at most %d", hdr.DocumentSize, maxSize)}, nil
	}
	aead, err := newGCM(hdr.SessionKey)
	if err != nil {
		return nil, err
	}
	doc := &documentSink{hash: sha256.New()}
	if v.StoreDir != "" {
		if err := doc.spool(v.StoreDir); err != nil {
			log.Errorw("relay: cannot spool document", "err", err)
			return &Verdict{Code: VerdictInternal, Message: "verifier cannot store documents"}, nil
		}
		defer doc.discard()
	}
	opener := &chunkOpener{aead: aead}
	var total uint64
	for !opener.done {
		_ = s.SetReadDeadline(time.Now().Add(RelayIdleTimeout))
		frame, err := ReadFrame(r, MaxRelayFrameSize)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &Verdict{Code: VerdictTruncated, Message: fmt.Sprintf("%v: stream ended after %d bytes, before the final chunk", ErrTruncated, total)}, nil
		}
		if err != nil {
			return nil, err
		}
		chunk, final, err := opener.open(frame)
		if err != nil {
			return &Verdict{Code: VerdictBadChunk, Message: err.Error()}, nil
		}
		// Every chunk but the last is full: a relay cannot go on forever
		// with tiny chunks, each resetting the idle timeout.
		if !final && len(chunk) != ChunkSize {
			return &Verdict{Code: VerdictBadChunk, Message: fmt.Sprintf("%v: chunk %d is not final but holds %d bytes, want %d", ErrChunk, opener.index-1, len(chunk), ChunkSize)}, nil
		}
		total += uint64(len(chunk))
		if total > hdr.DocumentSize {
			return &Verdict{Code: VerdictSizeMismatch, Message: fmt.Sprintf("more than the announced %d bytes", hdr.DocumentSize)}, nil
		}
		if err := doc.write(chunk); err != nil {
			log.Errorw("relay: cannot spool document", "err", err)
			return &Verdict{Code: VerdictInternal, Message: "verifier cannot store documents"}, nil
		}
	}
	if total != hdr.DocumentSize {
		return &Verdict{Code: VerdictSizeMismatch, Message: fmt.Sprintf("received %d bytes, announced %d", total, hdr.DocumentSize)}, nil
	}
	receipt, err := ParseReceipt(hdr.Receipt)
	if err != nil {
		return &Verdict{Code: VerdictMalformedReceipt, Message: err.Error()}, nil
	}
	st, err := receipt.VerifyCached(v.Trust, doc.hash.Sum(nil), v.Heads)
	if err != nil {
		return &Verdict{Code: verdictFor(err), Message: err.Error()}, nil
	}
	msg := fmt.Sprintf("document %x stamped %s (serial %d) by %s", st.DocumentHash, FormatTime(st.Time), st.Serial, st.ServerID)
	if v.StoreDir != "" {
		if where, err := doc.keep(v.StoreDir, st, hdr.Receipt); err != nil {
			log.Errorw("relay: cannot store document", "err", err)
		} else {
			log.Infow("stored document", "dir", where)
		}
	}
	return &Verdict{Code: VerdictValid, Message: msg}, nil
}

// documentSink hashes a relayed document and, when storing, spools it to
// a temporary file so memory stays bounded.
type documentSink struct {
	hash hash.Hash
	file *os.File
}

func (d *documentSink) spool(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".incoming-*")
	d.file = f
	return err
}

func (d *documentSink) write(p []byte) error {
	d.hash.Write(p)
	if d.file != nil {
		_, err := d.file.Write(p)
		return err
	}
	return nil
}

func (d *documentSink) discard() {
	if d.file != nil {
		d.file.Close()
		os.Remove(d.file.Name())
	}
}

// keep moves the spooled document and its receipt into their own folder,
// named only from verified fields. An existing folder (the same receipt
// relayed again) is left as it is.
func (d *documentSink) keep(dir string, st *Statement, receipt []byte) (string, error) {
	where := filepath.Join(dir, fmt.Sprintf("%s-%d", st.ServerID, st.Serial))
	if err := os.Mkdir(where, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return where, nil
		}
		return "", err
	}
	if err := d.file.Sync(); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(where, "receipt.json"), receipt, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(d.file.Name(), filepath.Join(where, "document")); err != nil {
		return "", err
	}
	return where, nil
}
