package witness

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

type countMetrics struct {
	mu       sync.Mutex
	rejected map[string]int
	cosigned int
	equivoc  int
}

func (m *countMetrics) Rejected(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rejected == nil {
		m.rejected = map[string]int{}
	}
	m.rejected[reason]++
}
func (m *countMetrics) Cosigned(identity.ID)     { m.mu.Lock(); m.cosigned++; m.mu.Unlock() }
func (m *countMetrics) Equivocation(identity.ID) { m.mu.Lock(); m.equivoc++; m.mu.Unlock() }
func (m *countMetrics) get() (rejected map[string]int, cosigned, equivoc int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := map[string]int{}
	for k, v := range m.rejected {
		r[k] = v
	}
	return r, m.cosigned, m.equivoc
}

// TestCosignedHeads: three witnesses follow one authority; a requester
// collects two cosignatures of a head at or after its stamp's, which
// verify and tie to the stamp's head, on TCP and QUIC.
func TestCosignedHeads(t *testing.T) {
	for _, tr := range testnet.Transports {
		t.Run(tr.Name, func(t *testing.T) {
			a := startAuthority(t, tr.Listen, 100*time.Millisecond, time.Second)
			var ws []*testWitness
			for _, id := range witnesses {
				var peers []*testWitness
				peers = append(peers, ws...)
				w := startWitness(t, id, tr.Listen, t.TempDir(), a.host, hostsOf(peers)...)
				ws = append(ws, w)
			}
			req := testnet.NewHost(t, "1000", "")
			connect(t, req, a.host)
			c, err := NewCollector(newGossip(t, req, testkeys.Directory(t, allIDs...)), "server", policy(t, 2, witnesses...))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			time.Sleep(1500 * time.Millisecond) // a gossip heartbeat: the mesh forms
			st := stamp(t, a.auth)
			head, cosigs, err := c.Wait(waitCtx(t, 15*time.Second), st.Head.Head.Size)
			if err != nil {
				t.Fatal(err)
			}
			if head.Head.Size < st.Head.Head.Size || len(cosigs) != 2 {
				t.Fatalf("head of size %d with %d cosignatures, want size >= %d and 2", head.Head.Size, len(cosigs), st.Head.Head.Size)
			}
			if _, err := policy(t, 2, witnesses...).CheckCosignatures(head.Head, cosigs); err != nil {
				t.Fatal(err)
			}
			// Each witness saved what it cosigned before publishing it.
			eventually(t, 10*time.Second, "every witness saved a head", func() bool {
				for _, w := range ws {
					if l := w.w.State().Last("server"); l == nil || l.Head.Size < st.Head.Head.Size {
						return false
					}
				}
				return true
			})
			for _, w := range ws {
				if err := w.w.Ready(); err != nil {
					t.Errorf("witness %s not ready: %v", w.id, err)
				}
			}
		})
	}
}

// TestEquivocationCaught: two servers with one key, each reached by one
// witness; the witnesses are peered. Each view stamps one document: both
// witnesses hold evidence that verifies offline, fail /readyz, and
// cosign nothing more.
func TestEquivocationCaught(t *testing.T) {
	a1 := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Second)
	a2 := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Second)
	w1 := startWitness(t, "3000", testnet.Transports[0].Listen, t.TempDir(), a1.host)
	w2 := startWitness(t, "3001", testnet.Transports[0].Listen, t.TempDir(), a2.host, w1.host)
	time.Sleep(1500 * time.Millisecond)
	stamp(t, a1.auth)
	stamp(t, a2.auth)
	trust := testnet.Trust(t, testkeys.Directory(t, allIDs...))
	for _, w := range []*testWitness{w1, w2} {
		eventually(t, 20*time.Second, "witness "+string(w.id)+" holds evidence", func() bool { return w.w.Evidence("server") != "" })
		f, err := protocol.ReadEvidenceFile(w.w.Evidence("server"))
		if err != nil {
			t.Fatal(err)
		}
		if kind, err := f.Verify(trust); err != nil || kind != protocol.EquivocationFork {
			t.Fatalf("evidence of %s: %q, %v; want a fork", w.id, kind, err)
		}
		if err := w.w.Ready(); err == nil || !strings.Contains(err.Error(), "equivocated") {
			t.Errorf("witness %s ready despite evidence: %v", w.id, err)
		}
		if _, _, eq := w.m.get(); eq != 1 {
			t.Errorf("witness %s counted %d equivocations, want 1", w.id, eq)
		}
	}
	// Nothing more is cosigned, and a restart remembers the evidence.
	before := w1.w.State().Last("server")
	stamp(t, a1.auth)
	time.Sleep(time.Second)
	if after := w1.w.State().Last("server"); !sameHead(before, after) {
		t.Fatalf("witness cosigned a head of size %d after evidence", after.Head.Size)
	}
	w1.w.Close()
	w, err := New(w1.g, Config{Self: testnet.Entry(t, "3000"), Key: testkeys.Private(t, "3000"), Trust: trust, DataDir: w1.dir, Logs: w1.w.cfg.Logs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Ready() == nil {
		t.Fatal("a restarted witness forgot its evidence")
	}
}

func sameHead(a, b *protocol.SignedTreeHead) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && protocol.SameHead(a, b))
}

// TestClockLies: an authority whose clock is an hour behind or ahead gets
// no cosignature, and a requester waiting for one is told who did not
// cosign.
func TestClockLies(t *testing.T) {
	for _, off := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			a := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Second,
				authority.WithClock(func() time.Time { return time.Now().Add(off) }))
			w := startWitness(t, "3000", testnet.Transports[0].Listen, t.TempDir(), a.host)
			req := testnet.NewHost(t, "1000", "")
			connect(t, req, a.host)
			c, err := NewCollector(newGossip(t, req, testkeys.Directory(t, allIDs...)), "server", policy(t, 1, "3000"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			time.Sleep(1500 * time.Millisecond)
			st := stamp(t, a.auth)
			_, _, err = c.Wait(waitCtx(t, 3*time.Second), st.Head.Head.Size)
			if err == nil || !strings.Contains(err.Error(), "no cosignature from 3000") {
				t.Fatalf("stamp with a clock %v off: %v, want no cosignature from 3000", off, err)
			}
			if note := ClockNote(st.Head.Head.Time, time.Now(), DefaultClockTolerance); note == "" {
				t.Fatal("no note on a clock an hour off")
			}
			if l := w.w.State().Last("server"); l != nil {
				t.Fatalf("witness cosigned a head dated %s", protocol.FormatTime(l.Head.Time))
			}
		})
	}
}

// TestStateFailures: a damaged state file, or one deleted from a data
// directory that held it, is a start-up error; an empty or absent
// directory starts a new state.
func TestStateFailures(t *testing.T) {
	trust := testnet.Trust(t, testkeys.Directory(t, allIDs...))
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := OpenState(dir, "3000", trust); err != nil {
		t.Fatalf("absent dir: %v", err)
	}
	path := filepath.Join(dir, StateFileName)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no state file written at creation: %v", err)
	}
	if _, err := OpenState(dir, "3001", trust); err == nil || !strings.Contains(err.Error(), "not of 3001") {
		t.Fatalf("another witness's state: %v", err)
	}
	b, _ := os.ReadFile(path)
	for name, data := range map[string][]byte{
		"truncated": b[:len(b)/2],
		"empty":     {},
		"garbage":   []byte("{\"format\": \"tsnode-witness-state-v1\", \"witness_id\": \"3000\", \"cosigned\": [{}]}"),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenState(dir, "3000", trust); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s state file: %v, want an error naming %s", name, err, path)
		}
	}
	os.Remove(path)
	if err := os.Mkdir(filepath.Join(dir, EvidenceDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenState(dir, "3000", trust); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("state deleted from a used dir: %v", err)
	}
}

// TestRestartKeepsState: a witness restarted on its data directory (kill
// -9 is tested with real processes in cmd/tsnode) does not cosign a
// smaller head than the one it cosigned.
func TestRestartKeepsState(t *testing.T) {
	a := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Second)
	data := t.TempDir()
	w := startWitness(t, "3000", testnet.Transports[0].Listen, data, a.host)
	time.Sleep(1500 * time.Millisecond)
	stamp(t, a.auth)
	st := stamp(t, a.auth)
	eventually(t, 20*time.Second, "the witness cosigned", func() bool {
		l := w.w.State().Last("server")
		return l != nil && l.Head.Size == st.Head.Head.Size
	})
	w.w.Close()
	trust := testnet.Trust(t, testkeys.Directory(t, allIDs...))
	s, err := OpenState(data, "3000", trust)
	if err != nil {
		t.Fatal(err)
	}
	l := s.Last("server")
	if l == nil || l.Head.Size != st.Head.Head.Size {
		t.Fatalf("state after restart: %v, want the head of size %d", l, st.Head.Head.Size)
	}
	// The rule itself: a smaller head after it is refused.
	small := st.Head
	if err := trust.CheckCosignable(l, small, nil, time.Now(), time.Hour); err == nil && small.Head.Size < l.Head.Size {
		t.Fatal("a smaller head was cosignable after a larger one")
	}
}

// TestStaleAuthority: an authority that stops publishing turns the
// witness's readiness to failing once the heartbeat is missed.
func TestStaleAuthority(t *testing.T) {
	a := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, 500*time.Millisecond)
	w := startWitness(t, "3000", testnet.Transports[0].Listen, t.TempDir(), a.host)
	time.Sleep(1500 * time.Millisecond)
	stamp(t, a.auth)
	eventually(t, 5*time.Second, "a head cosigned", func() bool { return w.w.State().Last("server") != nil })
	// Fresh heads of the same tree keep it ready past StaleAfter.
	time.Sleep(4 * time.Second)
	if err := w.w.Ready(); err != nil {
		t.Fatalf("not ready while the authority publishes fresh heads: %v", err)
	}
	a.pub.Close()
	eventually(t, 10*time.Second, "a stale alarm", func() bool {
		err := w.w.Ready()
		return err != nil && strings.Contains(err.Error(), "stalled")
	})
}

// TestLateRequesterSeesTheFork: a requester that subscribes after the
// witnesses' evidence went round finds the fork from the two views'
// heads and fails at once, saying so.
func TestLateRequesterSeesTheFork(t *testing.T) {
	a1 := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, 500*time.Millisecond)
	a2 := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, 500*time.Millisecond)
	w := startWitness(t, "3000", testnet.Transports[0].Listen, t.TempDir(), a1.host)
	startWitness(t, "3001", testnet.Transports[0].Listen, t.TempDir(), a2.host, w.host)
	time.Sleep(1500 * time.Millisecond)
	stamp(t, a1.auth)
	stamp(t, a2.auth)
	eventually(t, 20*time.Second, "evidence", func() bool { return w.w.Evidence("server") != "" })
	time.Sleep(time.Second) // the evidence went round before the requester joins
	req := testnet.NewHost(t, "1000", "")
	connect(t, req, w.host)
	c, err := NewCollector(newGossip(t, req, testkeys.Directory(t, allIDs...)), "server", policy(t, 1, "3000"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, _, err = c.Wait(waitCtx(t, 20*time.Second), 1)
	if err == nil || !strings.Contains(err.Error(), "equivocated") {
		t.Fatalf("late requester: %v, want the equivocation", err)
	}
	t.Logf("told after %v", time.Since(start).Round(time.Millisecond))
}
