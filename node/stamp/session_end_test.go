package stamp

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// endRecorder is a Metrics that records how sessions end and what was
// refused.
type endRecorder struct {
	noMetrics
	ends    chan string
	mu      sync.Mutex
	refused map[string]int
}

func newEndRecorder() *endRecorder {
	return &endRecorder{ends: make(chan string, 16), refused: map[string]int{}}
}

func (m *endRecorder) SessionClosed(end string) { m.ends <- end }

func (m *endRecorder) Refused(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused[reason]++
}

func (m *endRecorder) refusals(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refused[reason]
}

// nextEnd is the end of the next session the server closes.
func (m *endRecorder) nextEnd(t *testing.T) string {
	t.Helper()
	select {
	case end := <-m.ends:
		return end
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not end the session within 20 s")
		return ""
	}
}

// How a session ends decides what the server logs and counts (§7.7): a
// requester that closes its side ended it; one that resets it, loses its
// connection or stops inside a frame abandoned it (an INFO line with the
// error, the end "abandoned", no refusal, nothing at WARN); only bytes
// that break the framing are a violation (WARN, a bad-request refusal).
// The idle timeout ends a read the same way a reset does (a deadline
// error, not a framing one): TestAbandoned in internal/p2pstream.
func TestSessionEnds(t *testing.T) {
	logs := testnet.CaptureLogs(t, "tsnode/stamp")
	cases := []struct {
		name string
		end  func(t *testing.T, client host.Host, srv *sessionServer, rs *rawSession)
		want []string // either one (a muxer may tell a lost connection as the stream's end)
	}{
		{"closed", func(t *testing.T, _ host.Host, _ *sessionServer, rs *rawSession) {
			if err := rs.s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}, []string{EndClosed}},
		{"reset", func(t *testing.T, _ host.Host, _ *sessionServer, rs *rawSession) {
			rs.s.Reset()
		}, []string{EndAbandoned}},
		{"reset inside a frame", func(t *testing.T, _ host.Host, _ *sessionServer, rs *rawSession) {
			write(t, rs, append(testnet.FrameHeader(100), make([]byte, 10)...))
			rs.s.Reset()
		}, []string{EndAbandoned}},
		{"closed inside a frame", func(t *testing.T, _ host.Host, _ *sessionServer, rs *rawSession) {
			write(t, rs, append(testnet.FrameHeader(100), make([]byte, 10)...))
			if err := rs.s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}, []string{EndAbandoned}},
		{"connection closed", func(t *testing.T, client host.Host, srv *sessionServer, _ *rawSession) {
			if err := client.Network().ClosePeer(srv.host.ID()); err != nil {
				t.Fatal(err)
			}
		}, []string{EndAbandoned, EndClosed}},
		{"frame too long", func(t *testing.T, _ host.Host, _ *sessionServer, rs *rawSession) {
			write(t, rs, testnet.FrameHeader(protocol.MaxSessionRequestSize+1))
		}, []string{EndViolation}},
		{"frame does not open", func(t *testing.T, _ host.Host, _ *sessionServer, rs *rawSession) {
			write(t, rs, append(testnet.FrameHeader(60), make([]byte, 60)...))
		}, []string{EndViolation}},
	}
	const violations = 2
	abandoned := 0 // sessions that ended so
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			m := newEndRecorder()
			srv := startSessionServerWith(t, tr.Listen, serverSetup{metrics: m})
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					client := testnet.ClientOf(t, "1000", srv.host)
					rs, err := openRawSession(t, client, srv, byte(i))
					if err != nil {
						t.Fatal(err)
					}
					if err := rs.stamp(1, i); err != nil {
						t.Fatal(err)
					}
					c.end(t, client, srv, rs)
					got := m.nextEnd(t)
					if !slices.Contains(c.want, got) {
						t.Fatalf("session ended %q, want %q", got, c.want)
					}
					if got == EndAbandoned {
						abandoned++
					}
				})
			}
			if got := m.refusals(protocol.StatusBadRequest); got != violations {
				t.Fatalf("%d bad-request refusals, want %d (the violations only)", got, violations)
			}
		})
	}
	stamp := logs.FilterLoggerName("tsnode/stamp")
	var warned []string
	for _, e := range stamp.FilterLevelExact(zapcore.WarnLevel).All() {
		warned = append(warned, e.Message)
		if !strings.Contains(e.Message, "protocol violation") {
			t.Errorf("WARN line %q: only violations are warned of", e.Message)
		}
	}
	if len(warned) != violations*len(testnet.Transports) {
		t.Errorf("WARN lines %q, want %d (one per violation)", warned, violations*len(testnet.Transports))
	}
	lines := stamp.FilterMessage("session closed").FilterField(zap.String("end", EndAbandoned))
	if lines.Len() != abandoned || abandoned < 3*len(testnet.Transports) {
		t.Errorf("%d INFO lines of %d abandoned sessions, want one each (and at least 3 per transport)", lines.Len(), abandoned)
	}
	for _, e := range lines.All() {
		if e.Level != zapcore.InfoLevel || e.ContextMap()["err"] == nil {
			t.Errorf("abandoned session logged at %s with %v, want INFO with the error", e.Level, e.ContextMap())
		}
	}
}

func write(t *testing.T, rs *rawSession, b []byte) {
	t.Helper()
	if _, err := rs.s.Write(b); err != nil {
		t.Fatal(err)
	}
}

// enospcStore is a head store on a full disk: every guard fails.
type enospcStore struct{}

func (enospcStore) Guard(uint64, tlog.Hash, time.Time) error {
	return &fs.PathError{Op: "write", Path: "guard", Err: syscall.ENOSPC}
}
func (enospcStore) SaveHead(*protocol.SignedTreeHead) error { return nil }

// A stamp whose batch is in the log but whose head's tree could not be
// guarded (a full disk) is refused with internal-error and a message
// that says it is logged (§7.6), not that it could not be logged.
func TestRefusalOfUnguardedStamp(t *testing.T) {
	srv := startSessionServerWith(t, testnet.Transports[0].Listen, serverSetup{
		authority: []authority.Option{authority.WithHeadStore(enospcStore{})}})
	sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))
	_, err := sess.Stamp(testnet.Ctx(t), docHash(0))
	if !errors.Is(err, protocol.ErrRefused) || !strings.Contains(err.Error(), protocol.StatusInternal) ||
		!strings.Contains(err.Error(), msgNotGuarded) {
		t.Fatalf("stamp under an unguarded head: %v, want %s: %q", err, protocol.StatusInternal, msgNotGuarded)
	}
	if srv.lg.Size() != 1 {
		t.Fatalf("log of %d leaves: the refused stamp is logged", srv.lg.Size())
	}
	if srv.signer.Head() != nil {
		t.Fatal("a head was published over an unguarded tree")
	}
}

// fullLog is a log on a full disk, to the authority (through
// authority.Log): every append fails.
type fullLog struct{ *merklelog.Log }

func (fullLog) Append(func(uint64, time.Time) ([][]byte, error), time.Time) (merklelog.Batch, error) {
	return merklelog.Batch{}, &fs.PathError{Op: "write", Path: merklelog.FileName, Err: syscall.ENOSPC}
}

// A stamp whose append failed is refused as not logged, and nothing is.
func TestRefusalOfUnloggedStamp(t *testing.T) {
	srv := startSessionServerWith(t, testnet.Transports[0].Listen, serverSetup{
		log: func(lg *merklelog.Log) authority.Log { return fullLog{lg} }})
	sess := mustSession(t, testnet.ClientOf(t, "1000", srv.host))
	_, err := sess.Stamp(testnet.Ctx(t), docHash(0))
	if !errors.Is(err, protocol.ErrRefused) || !strings.Contains(err.Error(), protocol.StatusInternal+": "+msgNotLogged) {
		t.Fatalf("stamp whose append failed: %v, want %s: %q", err, protocol.StatusInternal, msgNotLogged)
	}
	if srv.lg.Size() != 0 {
		t.Fatalf("log of %d leaves after a failed append", srv.lg.Size())
	}
}

// refusalOf tells the requester whether its stamp was logged.
func TestRefusalOf(t *testing.T) {
	for _, c := range []struct {
		err          error
		status, text string
	}{
		{authority.ErrClockBehind, protocol.StatusClockBehind, "clock is behind"},
		{authority.ErrClosed, protocol.StatusShuttingDown, "shutting down"},
		{fmt.Errorf("authority: signing the tree head of size 3: %w: HSM gone", authority.ErrNotSigned), protocol.StatusInternal, msgNotSigned},
		{errors.New("authority: appending 3 stamps to the log: disk I/O error"), protocol.StatusInternal, msgNotLogged},
	} {
		status, msg := refusalOf(c.err)
		if status != c.status || !strings.Contains(msg, c.text) {
			t.Errorf("refusalOf(%v) = %s %q, want %s %q", c.err, status, msg, c.status, c.text)
		}
	}
}
