package relay

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// outcomeRecorder is a Metrics that records how relays end and what was
// refused.
type outcomeRecorder struct {
	outcomes chan string
	mu       sync.Mutex
	refused  map[string]int
}

func (m *outcomeRecorder) Relayed(outcome, _ string, _ uint64, _ time.Duration) {
	m.outcomes <- outcome
}

func (m *outcomeRecorder) Refused(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused[reason]++
}

func (m *outcomeRecorder) next(t *testing.T) string {
	t.Helper()
	select {
	case o := <-m.outcomes:
		return o
	case <-time.After(20 * time.Second):
		t.Fatal("the verifier did not end the relay within 20 s")
		return ""
	}
}

// A sender that resets its relay, or closes it inside the header,
// abandoned it: an INFO line, the outcome "abandoned", no refusal. Only
// bytes that break the framing are a violation (WARN; a bad header is
// also a bad-request refusal).
func TestVerifierRelayEnds(t *testing.T) {
	logs := testnet.CaptureLogs(t, "tsnode/relay")
	m := &outcomeRecorder{outcomes: make(chan string, 16), refused: map[string]int{}}
	f := newRelayFixture(t, WithMetrics(m))
	sender := testnet.ClientOf(t, "1000", f.verifier)
	key := fill(protocol.SessionKeySize, 0x42)
	hdr := &protocol.RelayHeader{SenderID: "1000", SessionKey: key, Receipt: f.receipt, DocumentSize: uint64(len(f.doc))}
	sealedHdr, err := protocol.Seal(testnet.Entry(t, "2000").PublicKey, protocol.RelayHeaderTag, hdr.Encode())
	if err != nil {
		t.Fatal(err)
	}
	relay := func() *observer.ObservedLogs { return logs.FilterLoggerName("tsnode/relay") }
	for _, c := range []struct {
		name string
		// end sends, then ends the relay as a sender would.
		end  func(t *testing.T, s network.Stream)
		want string
	}{
		{"reset inside the document", func(t *testing.T, s network.Stream) {
			started := relay().FilterMessage("relay started").Len()
			write(t, s, append(framed(sealedHdr), framed(chunkFrames(t, key, f.doc)[0])...))
			// The reset must come once the verifier is reading the
			// document (a stream reset before its handler runs never
			// reaches it).
			for deadline := time.Now().Add(20 * time.Second); relay().FilterMessage("relay started").Len() == started; {
				if time.Now().After(deadline) {
					t.Fatal("the verifier did not start the relay within 20 s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			s.Reset()
		}, OutcomeAbandoned},
		{"closed inside the header", func(t *testing.T, s network.Stream) {
			write(t, s, framed(sealedHdr)[:100])
			if err := s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}, OutcomeAbandoned},
		{"header frame too long", func(t *testing.T, s network.Stream) {
			write(t, s, testnet.FrameHeader(protocol.MaxRelayHeaderSize+1))
			testnet.ExpectReset(t, s)
		}, OutcomeViolation},
		{"chunk frame too long", func(t *testing.T, s network.Stream) {
			write(t, s, append(framed(sealedHdr), testnet.FrameHeader(protocol.MaxRelayFrameSize+1)...))
			testnet.ExpectReset(t, s)
		}, OutcomeViolation},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.end(t, testnet.RawStream(t, sender, f.verifier.ID(), protocol.RelayProtocolID))
			if got := m.next(t); got != c.want {
				t.Fatalf("relay ended %q, want %q", got, c.want)
			}
		})
	}
	m.mu.Lock()
	if got := m.refused[protocol.StatusBadRequest]; got != 1 {
		t.Errorf("%d bad-request refusals, want 1 (the header frame too long)", got)
	}
	m.mu.Unlock()
	var warned []string
	for _, e := range relay().FilterLevelExact(zapcore.WarnLevel).All() {
		warned = append(warned, e.Message)
	}
	if len(warned) != 2 || strings.Contains(strings.Join(warned, "\n"), "abandoned") {
		t.Errorf("WARN lines %q, want the 2 violations'", warned)
	}
	if n := relay().FilterMessageSnippet("relay abandoned").FilterLevelExact(zapcore.InfoLevel).Len(); n != 2 {
		t.Errorf("%d INFO lines of abandoned relays, want 2", n)
	}
}

func write(t *testing.T, s network.Stream, b []byte) {
	t.Helper()
	if _, err := s.Write(b); err != nil {
		t.Fatal(err)
	}
}
