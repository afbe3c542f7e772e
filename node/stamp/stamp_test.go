package stamp

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
)

// fakeClock returns the times it is given, in order, then repeats the
// last one.
type fakeClock struct {
	mu    sync.Mutex
	times []time.Time
	calls int
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := min(c.calls, len(c.times)-1)
	c.calls++
	return c.times[i]
}

type stampFixture struct {
	dir                   *identity.Directory
	server, r1000, r2000  identity.Entry
	clock                 *fakeClock
	stamper               *Stamper
	log                   *authority.Authority
	serverKey, requestKey *rsa.PrivateKey
}

func newStampFixture(t *testing.T, times ...time.Time) *stampFixture {
	t.Helper()
	if len(times) == 0 {
		times = []time.Time{time.Date(2026, 3, 4, 10, 6, 7, 890, time.FixedZone("X", 5*3600))}
	}
	f := &stampFixture{
		dir:        testkeys.Directory(t, "server", "1000", "2000"),
		clock:      &fakeClock{times: times},
		serverKey:  testkeys.Private(t, "server"),
		requestKey: testkeys.Private(t, "1000"),
	}
	var err error
	for _, e := range []struct {
		id identity.ID
		to *identity.Entry
	}{{"server", &f.server}, {"1000", &f.r1000}, {"2000", &f.r2000}} {
		if *e.to, err = f.dir.Lookup(e.id); err != nil {
			t.Fatal(err)
		}
	}
	a, err := authority.New(openLog(t, t.TempDir()), f.serverKey, f.server, authority.WithClock(f.clock.now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	f.log = a
	if f.stamper, err = NewStamper(f.serverKey, f.server, f.dir, a); err != nil {
		t.Fatal(err)
	}
	return f
}

func newRequest(id identity.ID, hashByte, nonceByte byte) *protocol.StampRequest {
	return &protocol.StampRequest{RequesterID: id, DocumentHash: fill(protocol.HashSize, hashByte), Nonce: fill(protocol.NonceSize, nonceByte)}
}

func (f *stampFixture) seal(t *testing.T, req *protocol.StampRequest) []byte {
	t.Helper()
	sealed, err := protocol.Seal(f.server.PublicKey, protocol.StampRequestTag, req.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > protocol.MaxStampRequestSize {
		t.Fatalf("sealed request is %d bytes, maximum %d", len(sealed), protocol.MaxStampRequestSize)
	}
	return sealed
}

func TestStamperHandleAndOpenResponse(t *testing.T) {
	f := newStampFixture(t)
	req := newRequest("1000", 0xd0, 0x11)
	reply, st, err := f.stamper.Handle(f.r1000.PeerID, f.seal(t, req))
	if err != nil {
		t.Fatal(err)
	}
	wantTime := f.clock.times[0].UTC()
	switch {
	case !bytes.Equal(st.DocumentHash, req.DocumentHash), !bytes.Equal(st.Nonce, req.Nonce):
		t.Errorf("statement hash %x nonce %x", st.DocumentHash, st.Nonce)
	case st.RequesterID != "1000" || st.RequesterPeer != f.r1000.PeerID:
		t.Errorf("statement requester %s %s", st.RequesterID, st.RequesterPeer)
	case st.ServerID != "server" || st.ServerPeer != f.server.PeerID:
		t.Errorf("statement server %s %s", st.ServerID, st.ServerPeer)
	case !st.Time.Equal(wantTime) || st.Time.Location() != time.UTC:
		t.Errorf("statement time %v, want %v in UTC", st.Time, wantTime)
	case st.Serial != 0:
		t.Errorf("first serial %d, want 0 (the first leaf of the log)", st.Serial)
	case st.HashAlgorithm != protocol.HashAlgorithm:
		t.Errorf("hash algorithm %q", st.HashAlgorithm)
	}

	resp := protocol.EncodeStampResponse(protocol.StatusOK, reply)
	if len(resp) > protocol.MaxStampResponseSize {
		t.Errorf("response is %d bytes, maximum %d", len(resp), protocol.MaxStampResponseSize)
	}
	got, sig, err := protocol.OpenStampResponse(resp, f.requestKey, req, testnet.Trust(t, f.dir), f.server, f.r1000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), st.Encode()) {
		t.Fatal("the requester opened another statement than the server signed")
	}
	if err := protocol.VerifySignature(f.server.PublicKey, got.Encode(), sig); err != nil {
		t.Fatal(err)
	}
	// What the requester keeps verifies offline.
	if _, err := protocol.NewReceipt(got, sig).Verify(testnet.Trust(t, f.dir), req.DocumentHash); err != nil {
		t.Fatalf("receipt of the stamp: %v", err)
	}

	t.Run("refusals", func(t *testing.T) {
		testOpenStampResponseRefuses(t, f, req, reply, st, sig)
	})
}

func testOpenStampResponseRefuses(t *testing.T, f *stampFixture, req *protocol.StampRequest, reply []byte, st *protocol.Statement, sig []byte) {
	ok := protocol.EncodeStampResponse(protocol.StatusOK, reply)
	outsider := testnet.Entry(t, "outsider")

	// forged seals a reply record to 1000 as a server (or impostor) would.
	forged := func(enc, sig []byte) []byte {
		sealed, err := protocol.Seal(f.r1000.PublicKey, protocol.StampReplyTag, protocol.EncodeRecord(protocol.StampReplyTag, enc, sig))
		if err != nil {
			t.Fatal(err)
		}
		return protocol.EncodeStampResponse(protocol.StatusOK, sealed)
	}
	sealedAs := func(pub *rsa.PublicKey, context string, pt []byte) []byte {
		sealed, err := protocol.Seal(pub, context, pt)
		if err != nil {
			t.Fatal(err)
		}
		return protocol.EncodeStampResponse(protocol.StatusOK, sealed)
	}
	enc := st.Encode()
	reason := `request claims id "1000" (peer X) but was sent by peer Y`
	// A requester that stamps its own statement, answering as the server
	// it claims to be: its key is in the directory, but it is no
	// authority.
	self := cloneStatement(st)
	self.ServerID, self.ServerPeer = f.r1000.ID, f.r1000.PeerID
	selfEnc := self.Encode()

	for _, tc := range []struct {
		name   string
		resp   []byte
		req    *protocol.StampRequest
		server identity.Entry
		self   identity.Entry
		want   error
		msg    string
	}{
		{"reply for another hash", ok, &protocol.StampRequest{RequesterID: "1000", DocumentHash: fill(protocol.HashSize, 0xd1), Nonce: req.Nonce},
			f.server, f.r1000, protocol.ErrReplyMismatch, "hash"},
		{"replayed older reply", ok, &protocol.StampRequest{RequesterID: "1000", DocumentHash: req.DocumentHash, Nonce: fill(protocol.NonceSize, 0x12)},
			f.server, f.r1000, protocol.ErrReplyMismatch, "nonce"},
		{"stamped for another requester", ok, req, f.server, identity.Entry{ID: "2000", PeerID: f.r2000.PeerID},
			protocol.ErrReplyMismatch, "2000"},
		{"stamped for another requester peer", ok, req, f.server, identity.Entry{ID: "1000", PeerID: f.r2000.PeerID},
			protocol.ErrReplyMismatch, ""},
		{"signed as another server id", ok, req, identity.Entry{ID: "server2", PublicKey: f.server.PublicKey, PeerID: f.server.PeerID},
			f.r1000, protocol.ErrReplyMismatch, "server2"},
		{"signed as another server peer", ok, req, identity.Entry{ID: "server", PublicKey: outsider.PublicKey, PeerID: outsider.PeerID},
			f.r1000, protocol.ErrReplyMismatch, ""},
		{"signature by another key", forged(enc, signAs(t, "outsider", enc)), req, f.server, f.r1000, protocol.ErrBadSignature, ""},
		{"signed by an enrolled requester, not an authority", forged(selfEnc, signAs(t, "1000", selfEnc)), req, f.r1000, f.r1000,
			protocol.ErrUntrustedSigner, "untrusted signer: 1000 is not a trusted authority"},
		{"signature byte changed", forged(enc, flip(sig, 7)), req, f.server, f.r1000, protocol.ErrBadSignature, ""},
		{"signature missing", forged(enc, nil), req, f.server, f.r1000, protocol.ErrBadSignature, ""},
		{"statement not a statement", forged([]byte("hello"), sig), req, f.server, f.r1000, protocol.ErrMalformed, ""},
		{"reply sealed to another requester", sealedAs(f.r2000.PublicKey, protocol.StampReplyTag, protocol.EncodeRecord(protocol.StampReplyTag, enc, sig)),
			req, f.server, f.r1000, protocol.ErrOpen, ""},
		{"reply sealed for another purpose", sealedAs(f.r1000.PublicKey, protocol.StampRequestTag, protocol.EncodeRecord(protocol.StampReplyTag, enc, sig)),
			req, f.server, f.r1000, protocol.ErrOpen, ""},
		{"reply record of another type", sealedAs(f.r1000.PublicKey, protocol.StampReplyTag, protocol.EncodeRecord(protocol.StampResponseTag, enc, sig)),
			req, f.server, f.r1000, protocol.ErrMalformed, ""},
		{"reply payload garbage", protocol.EncodeStampResponse(protocol.StatusOK, []byte("garbage")), req, f.server, f.r1000, protocol.ErrOpen, ""},
		{"not a response record", reply, req, f.server, f.r1000, protocol.ErrMalformed, ""},
		{"response with three fields", protocol.EncodeRecord(protocol.StampResponseTag, []byte(protocol.StatusOK), reply, nil), req, f.server, f.r1000, protocol.ErrMalformed, ""},
		{"peer mismatch refusal", protocol.EncodeStampResponse(protocol.StatusPeerMismatch, []byte(reason)), req, f.server, f.r1000, protocol.ErrRefused, reason},
		{"unknown id refusal", protocol.EncodeStampResponse(protocol.StatusUnknownID, []byte("no key for 9999")), req, f.server, f.r1000, protocol.ErrRefused, protocol.StatusUnknownID + ": no key for 9999"},
		{"unknown status", protocol.EncodeStampResponse("maybe", []byte("?")), req, f.server, f.r1000, protocol.ErrRefused, "maybe"},
		{"empty status", protocol.EncodeStampResponse("", reply), req, f.server, f.r1000, protocol.ErrRefused, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotSig, err := protocol.OpenStampResponse(tc.resp, f.requestKey, tc.req, testnet.Trust(t, f.dir), tc.server, tc.self)
			if !errors.Is(err, tc.want) {
				t.Fatalf("openStampResponse = %v, want %v", err, tc.want)
			}
			if got != nil || gotSig != nil {
				t.Error("a refused response still returned a statement or signature")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
		})
	}
}

func refusal(t *testing.T, err error) *StampError {
	t.Helper()
	var se *StampError
	if !errors.As(err, &se) {
		t.Fatalf("Handle error %v (%T) is not a *StampError", err, err)
	}
	return se
}

// Flaw 5: the prototype trusted the id inside the message and built a
// file path from it.
func TestStamperRefuses(t *testing.T) {
	f := newStampFixture(t)
	// Handle must not touch the file system: run it in an empty directory
	// and check that it stays empty.
	work := t.TempDir()
	t.Chdir(work)

	pathID := newRequest("1000", 1, 2)
	pathID.RequesterID = "../../etc/passwd"
	badHash := newRequest("1000", 1, 2)
	badHash.DocumentHash = badHash.DocumentHash[:protocol.HashSize-1]
	badNonce := newRequest("1000", 1, 2)
	badNonce.Nonce = append(badNonce.Nonce, 0)
	good := f.seal(t, newRequest("1000", 1, 2))
	sealedWith := func(pub *rsa.PublicKey, context string, pt []byte) []byte {
		sealed, err := protocol.Seal(pub, context, pt)
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}

	for _, tc := range []struct {
		name   string
		remote identity.Entry
		sealed []byte
		status []string // any of
		msg    []string // all of
	}{
		{"sent by another peer", f.r2000, good, []string{protocol.StatusPeerMismatch},
			[]string{`"1000"`, f.r1000.PeerID.String(), f.r2000.PeerID.String()}},
		{"sent by the server's own peer", f.server, good, []string{protocol.StatusPeerMismatch}, []string{f.server.PeerID.String()}},
		{"id not in the directory", f.r1000, f.seal(t, newRequest("9999", 1, 2)), []string{protocol.StatusUnknownID, protocol.StatusBadRequest}, []string{"9999"}},
		{"id that is a path", f.r1000, f.seal(t, pathID), []string{protocol.StatusBadRequest, protocol.StatusUnknownID}, nil},
		{"sealed to the wrong key", f.r1000, sealedWith(f.r1000.PublicKey, protocol.StampRequestTag, newRequest("1000", 1, 2).Encode()),
			[]string{protocol.StatusBadRequest}, nil},
		{"sealed for another purpose", f.r1000, sealedWith(f.server.PublicKey, protocol.StampReplyTag, newRequest("1000", 1, 2).Encode()),
			[]string{protocol.StatusBadRequest}, nil},
		{"short hash", f.r1000, f.seal(t, badHash), []string{protocol.StatusBadRequest}, []string{"hash"}},
		{"long nonce", f.r1000, f.seal(t, badNonce), []string{protocol.StatusBadRequest}, []string{"nonce"}},
		{"not sealed", f.r1000, newRequest("1000", 1, 2).Encode(), []string{protocol.StatusBadRequest}, nil},
		{"empty", f.r1000, nil, []string{protocol.StatusBadRequest}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply, st, err := f.stamper.Handle(tc.remote.PeerID, tc.sealed)
			if reply != nil || st != nil {
				t.Fatal("refused request still produced a reply")
			}
			se := refusal(t, err)
			found := false
			for _, s := range tc.status {
				found = found || se.Status == s
			}
			if !found {
				t.Fatalf("status %q (%s), want one of %q", se.Status, se.Message, tc.status)
			}
			for _, m := range tc.msg {
				if !strings.Contains(se.Message, m) {
					t.Errorf("message %q does not name %s", se.Message, m)
				}
			}
			if se.Error() != se.Status+": "+se.Message {
				t.Errorf("Error() = %q", se.Error())
			}
		})
	}
	if entries, err := os.ReadDir(work); err != nil || len(entries) != 0 {
		t.Fatalf("Handle touched the working directory: %v %v", entries, err)
	}

	// Refusals consume no serial.
	_, st, err := f.stamper.Handle(f.r1000.PeerID, good)
	if err != nil {
		t.Fatal(err)
	}
	if st.Serial != 0 {
		t.Fatalf("serial after refusals is %d, want 0", st.Serial)
	}
}

func TestParseStampRequest(t *testing.T) {
	req := newRequest("1000", 3, 4)
	got, err := protocol.ParseStampRequest(req.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.RequesterID != req.RequesterID || !bytes.Equal(got.DocumentHash, req.DocumentHash) || !bytes.Equal(got.Nonce, req.Nonce) {
		t.Fatalf("parseStampRequest = %+v, want %+v", got, req)
	}
	fields := func() [][]byte {
		return [][]byte{[]byte("1000"), []byte(protocol.HashAlgorithm), fill(protocol.HashSize, 3), fill(protocol.NonceSize, 4)}
	}
	with := func(i int, v []byte) []byte {
		f := fields()
		f[i] = v
		return protocol.EncodeRecord(protocol.StampRequestTag, f...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"wrong tag", protocol.EncodeRecord(protocol.StampReplyTag, fields()...)},
		{"statement tag", protocol.EncodeRecord(protocol.StatementTag, fields()...)},
		{"three fields", protocol.EncodeRecord(protocol.StampRequestTag, fields()[:3]...)},
		{"path id", with(0, []byte("../../etc/passwd"))},
		{"empty id", with(0, nil)},
		{"id with NUL", with(0, []byte("1000\x00"))},
		{"other hash algorithm", with(1, []byte("md5"))},
		{"short hash", with(2, fill(protocol.HashSize-1, 3))},
		{"empty hash", with(2, nil)},
		{"short nonce", with(3, fill(protocol.NonceSize-1, 4))},
		{"trailing byte", append(req.Encode(), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := protocol.ParseStampRequest(tc.in)
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("parseStampRequest = %+v, %v; want ErrMalformed", got, err)
			}
		})
	}
}

// Flaw 7: the prototype used local time at second resolution, so stamps
// were ambiguous and could go backwards.
func TestStamperTimeAndSerial(t *testing.T) {
	base := time.Date(2026, 6, 1, 12, 0, 0, 500, time.FixedZone("CEST", 2*3600))
	var prevSerial uint64
	var prev time.Time
	// Through Handle, with the clock stepping back within the tolerance:
	// the log keeps times strictly increasing and in UTC, and serials
	// consecutive. (A clock further behind is refused: authority's
	// TestClockSteps.)
	f := newStampFixture(t, base, base.Add(-time.Second), base.Add(-1500*time.Millisecond))
	for i := range 3 {
		_, st, err := f.stamper.Handle(f.r1000.PeerID, f.seal(t, newRequest("1000", byte(i), byte(i))))
		if err != nil {
			t.Fatal(err)
		}
		if st.Time.Location() != time.UTC || !st.Time.After(prev) || (i > 0 && st.Serial != prevSerial+1) {
			t.Fatalf("stamp %d: %s serial %d after %s serial %d", i, protocol.FormatTime(st.Time), st.Serial, protocol.FormatTime(prev), prevSerial)
		}
		if protocol.FormatTime(st.Time) != protocol.FormatTime(base.Add(time.Duration(i))) {
			t.Errorf("stamp %d: time %s, want %s", i, protocol.FormatTime(st.Time), protocol.FormatTime(base.Add(time.Duration(i))))
		}
		prev, prevSerial = st.Time, st.Serial
	}
}
