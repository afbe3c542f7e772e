package relay

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/drain"
	"github.com/tsnode/tsnode/internal/p2pstream"
	"github.com/tsnode/tsnode/protocol"
)

// The relay protocol, /tsnode/relay/1.0.0 (docs/PROTOCOL.md §9): a
// requester sends a document and its receipt, sealed to a verifier, and
// gets the verifier's verdict.
const (
	ID          = protocol.RelayProtocolID
	ServiceName = protocol.RelayServiceName
	// HeadCacheSize is how many verified tree heads a verifier remembers.
	HeadCacheSize = 4096
)

var log = logging.Logger("tsnode/relay")

// Service is a verifier's side of the relay protocol: it recomputes the
// hash of the bytes it receives and checks the receipt with its trust
// policy, then answers with its verdict.
type Service struct {
	host  host.Host
	key   *rsa.PrivateKey
	self  identity.Entry
	dir   identity.Peers
	trust atomic.Pointer[protocol.Trust] // SetTrust replaces it on a reload
	heads *protocol.HeadCache
	drain *drain.Tracker
	// Set by options.
	storeDir  string
	onVerdict func(remote peer.ID, v *protocol.Verdict)
	maxSize   uint64
	metrics   Metrics
	witnesses *protocol.WitnessPolicy // nil: no cosignatures required
}

// Relay outcomes, as Metrics.Relayed names them.
const (
	OutcomeVerdict   = "verdict"   // a verdict was sent
	OutcomeAbandoned = "abandoned" // the sender reset, went away or timed out
	OutcomeViolation = "violation" // the sender broke the protocol: reset, no verdict
)

// Metrics is told what the service does (--metrics); its methods must be
// quick.
type Metrics interface {
	// Relayed: one relay ended with outcome; code is the verdict's when one
	// was sent; bytes is the document bytes received, d the time since
	// the header arrived.
	Relayed(outcome, code string, bytes uint64, d time.Duration)
	// Refused: a relay refused before its header was read
	// (protocol.StatusShuttingDown) or because the header was bad
	// (protocol.StatusBadRequest).
	Refused(reason string)
}

type noMetrics struct{}

func (noMetrics) Relayed(string, string, uint64, time.Duration) {}
func (noMetrics) Refused(string)                                {}

// WithMetrics tells m what the service does.
func WithMetrics(m Metrics) Option {
	return func(s *Service) {
		if m != nil {
			s.metrics = m
		}
	}
}

// Option tunes a Service.
type Option func(*Service)

// WithStore keeps each valid document with its receipt in
// dir/<server id>-<serial>/.
func WithStore(dir string) Option { return func(s *Service) { s.storeDir = dir } }

// WithVerdictHook tells f every verdict.
func WithVerdictHook(f func(remote peer.ID, v *protocol.Verdict)) Option {
	return func(s *Service) { s.onVerdict = f }
}

// WithMaxDocumentSize refuses larger documents (default
// protocol.DefaultMaxDocumentSize).
func WithMaxDocumentSize(n uint64) Option { return func(s *Service) { s.maxSize = n } }

// WithWitnesses accepts only receipts that p's witnesses cosigned
// (v3 receipts with K valid cosignatures); nil: none required.
func WithWitnesses(p *protocol.WitnessPolicy) Option { return func(s *Service) { s.witnesses = p } }

// New serves the relay protocol on h as the verifier self, whose private
// key is key: senders must be in dir, and only receipts that trust
// accepts are valid.
func New(h host.Host, key *rsa.PrivateKey, self identity.Entry, dir identity.Peers, trust *protocol.Trust, opts ...Option) (*Service, error) {
	if trust == nil {
		return nil, errors.New("relay: no trust policy")
	}
	s := &Service{host: h, key: key, self: self, dir: dir, heads: protocol.NewHeadCache(HeadCacheSize), drain: drain.New(), maxSize: protocol.DefaultMaxDocumentSize, metrics: noMetrics{}}
	s.trust.Store(trust)
	for _, o := range opts {
		o(s)
	}
	if s.storeDir != "" {
		if err := removeIncoming(s.storeDir); err != nil {
			return nil, fmt.Errorf("relay: cleaning the store %s: %w", s.storeDir, err)
		}
	}
	h.SetStreamHandler(ID, s.handle)
	return s, nil
}

// SetTrust makes trust the policy of the relays that reach their
// verdict from now on (a reload of the keys). The cache of verified
// heads stays: an entry counts only for the key trust names for the
// head, which trust looks up before the cache.
func (s *Service) SetTrust(trust *protocol.Trust) {
	if trust != nil {
		s.trust.Store(trust)
	}
}

// Close stops serving the protocol; relays in progress finish.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(ID)
	return nil
}

// Drain refuses new relays (their streams are reset) and waits, until ctx
// ends, for the relays in progress to get their verdicts.
func (s *Service) Drain(ctx context.Context) error {
	if err := s.drain.Drain(ctx); err != nil {
		return fmt.Errorf("relay: draining: %w", err)
	}
	return nil
}

// handle answers one relay.
func (v *Service) handle(s network.Stream) {
	if !v.drain.Enter() {
		log.Infow("relay refused: shutting down", "peer", s.Conn().RemotePeer())
		v.metrics.Refused(protocol.StatusShuttingDown)
		s.Reset()
		return
	}
	defer v.drain.Leave()
	release, err := p2pstream.Prepare(s, protocol.RelayServiceName, protocol.MaxRelayHeaderSize+protocol.MaxRelayFrameSize)
	if err != nil {
		log.Debugw("relay stream refused", "peer", s.Conn().RemotePeer(), "err", err)
		s.Reset()
		return
	}
	defer release()
	remote := s.Conn().RemotePeer()
	r := bufio.NewReaderSize(s, 4096)

	_ = s.SetReadDeadline(time.Now().Add(protocol.RelayIdleTimeout))
	badHeader := func(what string, err error) {
		log.Warnw("relay: "+what+"; resetting stream", "peer", remote, "err", err)
		v.metrics.Refused(protocol.StatusBadRequest)
		v.metrics.Relayed(OutcomeViolation, "", 0, 0)
		s.Reset()
	}
	frame, err := protocol.ReadFrame(r, protocol.MaxRelayHeaderSize)
	if p2pstream.Abandoned(err) {
		log.Infow("relay abandoned before its header: the sender closed or reset the stream, went away or timed out", "peer", remote, "err", err)
		v.metrics.Relayed(OutcomeAbandoned, "", 0, 0)
		s.Reset()
		return
	}
	if err != nil {
		badHeader("bad header frame", err)
		return
	}
	plain, err := protocol.Open(v.key, protocol.RelayHeaderTag, frame)
	if err != nil {
		badHeader("header does not open", err)
		return
	}
	hdr, err := protocol.ParseRelayHeader(plain)
	if err != nil {
		badHeader("malformed header", err)
		return
	}
	log.Infow("relay started", "peer", remote, "sender", hdr.SenderID, "size", hdr.DocumentSize)
	start := time.Now()
	var received uint64
	defer func() {
		log.Infow("relay ended", "peer", remote, "size", hdr.DocumentSize, "received", received, "duration", time.Since(start).Round(time.Millisecond))
	}()
	verdict, violation := v.receive(s, r, remote, hdr, &received)
	if violation != nil {
		if p2pstream.Abandoned(violation) {
			log.Infow("relay abandoned: the sender reset the stream, went away or timed out", "peer", remote, "err", violation)
			v.metrics.Relayed(OutcomeAbandoned, "", received, time.Since(start))
		} else {
			log.Warnw("relay: protocol violation; resetting stream", "peer", remote, "err", violation)
			v.metrics.Relayed(OutcomeViolation, "", received, time.Since(start))
		}
		s.Reset()
		return
	}
	verdict.Verifier = v.self.ID
	if v.onVerdict != nil {
		v.onVerdict(remote, verdict)
	}
	v.metrics.Relayed(OutcomeVerdict, verdict.Code, received, time.Since(start))
	log.Infow("verdict", "peer", remote, "sender", hdr.SenderID, "verdict", verdict.Code, "detail", verdict.Message,
		"bytes", received, "duration", time.Since(start).Round(time.Millisecond).String())
	out, err := protocol.SealVerdict(hdr.SessionKey, verdict)
	if err != nil {
		s.Reset()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(protocol.RelayIdleTimeout))
	if err := protocol.WriteFrame(s, out); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

// receive reads the document and judges it. A non-nil error means the
// stream failed (p2pstream.Abandoned) or the peer broke the framing; either
// gets a reset instead of a verdict.
// received counts the document bytes read.
func (v *Service) receive(s network.Stream, r *bufio.Reader, remote peer.ID, hdr *protocol.RelayHeader, received *uint64) (*protocol.Verdict, error) {
	sender, err := v.dir.Lookup(hdr.SenderID)
	if err != nil || sender.PeerID != remote {
		return &protocol.Verdict{Code: protocol.VerdictPeerMismatch, Message: fmt.Sprintf("relay claims sender %q but came from peer %s", hdr.SenderID, remote)}, nil
	}
	maxSize := cmp.Or(v.maxSize, protocol.DefaultMaxDocumentSize)
	if hdr.DocumentSize > maxSize {
		return &protocol.Verdict{Code: protocol.VerdictTooLarge, Message: fmt.Sprintf("document of %d bytes, this verifier accepts at most %d", hdr.DocumentSize, maxSize)}, nil
	}
	aead, err := protocol.NewGCM(hdr.SessionKey)
	if err != nil {
		return nil, fmt.Errorf("%w: relay session key: %v", protocol.ErrMalformed, err)
	}
	doc := &documentSink{hash: sha256.New()}
	if v.storeDir != "" {
		if err := doc.spool(v.storeDir); err != nil {
			log.Errorw("relay: cannot spool document", "err", err)
			return &protocol.Verdict{Code: protocol.VerdictInternal, Message: "verifier cannot store documents"}, nil
		}
		defer doc.discard()
	}
	opener := &protocol.ChunkOpener{Aead: aead}
	var total uint64
	for !opener.Done {
		_ = s.SetReadDeadline(time.Now().Add(protocol.RelayIdleTimeout))
		frame, err := protocol.ReadFrame(r, protocol.MaxRelayFrameSize)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &protocol.Verdict{Code: protocol.VerdictTruncated, Message: fmt.Sprintf("%v: stream ended after %d bytes, before the final chunk", protocol.ErrTruncated, total)}, nil
		}
		if err != nil {
			return nil, err
		}
		chunk, final, err := opener.Open(frame)
		if err != nil {
			return &protocol.Verdict{Code: protocol.VerdictBadChunk, Message: err.Error()}, nil
		}
		// Every chunk but the last is full: a relay cannot go on forever
		// with tiny chunks, each resetting the idle timeout.
		if !final && len(chunk) != protocol.ChunkSize {
			return &protocol.Verdict{Code: protocol.VerdictBadChunk, Message: fmt.Sprintf("%v: chunk %d is not final but holds %d bytes, want %d", protocol.ErrChunk, opener.Index-1, len(chunk), protocol.ChunkSize)}, nil
		}
		total += uint64(len(chunk))
		*received = total
		if total > hdr.DocumentSize {
			return &protocol.Verdict{Code: protocol.VerdictSizeMismatch, Message: fmt.Sprintf("more than the announced %d bytes", hdr.DocumentSize)}, nil
		}
		if err := doc.write(chunk); err != nil {
			log.Errorw("relay: cannot spool document", "err", err)
			return &protocol.Verdict{Code: protocol.VerdictInternal, Message: "verifier cannot store documents"}, nil
		}
	}
	if total != hdr.DocumentSize {
		return &protocol.Verdict{Code: protocol.VerdictSizeMismatch, Message: fmt.Sprintf("received %d bytes, announced %d", total, hdr.DocumentSize)}, nil
	}
	receipt, err := protocol.ParseReceipt(hdr.Receipt)
	if err != nil {
		return &protocol.Verdict{Code: protocol.VerdictMalformedReceipt, Message: err.Error()}, nil
	}
	st, cosigs, err := receipt.VerifyWitnessed(v.trust.Load(), v.witnesses, doc.hash.Sum(nil), v.heads)
	if err != nil {
		return &protocol.Verdict{Code: protocol.VerdictFor(err), Message: err.Error()}, nil
	}
	msg := fmt.Sprintf("document %x stamped %s (serial %d) by %s", st.DocumentHash, protocol.FormatTime(st.Time), st.Serial, st.ServerID)
	if len(cosigs) > 0 {
		msg += fmt.Sprintf(", witnessed by %d of %d", len(cosigs), v.witnesses.K())
	}
	if v.storeDir != "" {
		if where, err := doc.keep(v.storeDir, st, hdr.Receipt); err != nil {
			log.Errorw("relay: cannot store document", "err", err)
		} else {
			log.Infow("stored document", "dir", where)
		}
	}
	return &protocol.Verdict{Code: protocol.VerdictValid, Message: msg}, nil
}
