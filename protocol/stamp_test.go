package protocol

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"tsnode/identity"
	"tsnode/internal/testkeys"
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
	f.stamper = NewStamper(f.serverKey, f.server, f.dir, f.clock.now)
	return f
}

func newRequest(id identity.ID, hashByte, nonceByte byte) *StampRequest {
	return &StampRequest{RequesterID: id, DocumentHash: fill(HashSize, hashByte), Nonce: fill(NonceSize, nonceByte)}
}

func (f *stampFixture) seal(t *testing.T, req *StampRequest) []byte {
	t.Helper()
	sealed, err := Seal(f.server.PublicKey, stampRequestTag, req.encode())
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) > MaxStampRequestSize {
		t.Fatalf("sealed request is %d bytes, maximum %d", len(sealed), MaxStampRequestSize)
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
	case st.Serial != 1:
		t.Errorf("first serial %d, want 1", st.Serial)
	case st.HashAlgorithm != HashAlgorithm:
		t.Errorf("hash algorithm %q", st.HashAlgorithm)
	}

	resp := encodeStampResponse(StatusOK, reply)
	if len(resp) > MaxStampResponseSize {
		t.Errorf("response is %d bytes, maximum %d", len(resp), MaxStampResponseSize)
	}
	got, sig, err := openStampResponse(resp, f.requestKey, req, trustOf(t, f.dir), f.server, f.r1000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), st.Encode()) {
		t.Fatal("the requester opened another statement than the server signed")
	}
	if err := VerifySignature(f.server.PublicKey, got.Encode(), sig); err != nil {
		t.Fatal(err)
	}
	// What the requester keeps verifies offline.
	if _, err := NewReceipt(got, sig).Verify(trustOf(t, f.dir), req.DocumentHash); err != nil {
		t.Fatalf("receipt of the stamp: %v", err)
	}

	t.Run("refusals", func(t *testing.T) {
		testOpenStampResponseRefuses(t, f, req, reply, st, sig)
	})
}

func testOpenStampResponseRefuses(t *testing.T, f *stampFixture, req *StampRequest, reply []byte, st *Statement, sig []byte) {
	ok := encodeStampResponse(StatusOK, reply)
	outsider := entry(t, "outsider")

	// forged seals a reply record to 1000 as a server (or impostor) would.
	forged := func(enc, sig []byte) []byte {
		sealed, err := Seal(f.r1000.PublicKey, stampReplyTag, EncodeRecord(stampReplyTag, enc, sig))
		if err != nil {
			t.Fatal(err)
		}
		return encodeStampResponse(StatusOK, sealed)
	}
	sealedAs := func(pub *rsa.PublicKey, context string, pt []byte) []byte {
		sealed, err := Seal(pub, context, pt)
		if err != nil {
			t.Fatal(err)
		}
		return encodeStampResponse(StatusOK, sealed)
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
		req    *StampRequest
		server identity.Entry
		self   identity.Entry
		want   error
		msg    string
	}{
		{"reply for another hash", ok, &StampRequest{RequesterID: "1000", DocumentHash: fill(HashSize, 0xd1), Nonce: req.Nonce},
			f.server, f.r1000, ErrReplyMismatch, "hash"},
		{"replayed older reply", ok, &StampRequest{RequesterID: "1000", DocumentHash: req.DocumentHash, Nonce: fill(NonceSize, 0x12)},
			f.server, f.r1000, ErrReplyMismatch, "nonce"},
		{"stamped for another requester", ok, req, f.server, identity.Entry{ID: "2000", PeerID: f.r2000.PeerID},
			ErrReplyMismatch, "2000"},
		{"stamped for another requester peer", ok, req, f.server, identity.Entry{ID: "1000", PeerID: f.r2000.PeerID},
			ErrReplyMismatch, ""},
		{"signed as another server id", ok, req, identity.Entry{ID: "server2", PublicKey: f.server.PublicKey, PeerID: f.server.PeerID},
			f.r1000, ErrReplyMismatch, "server2"},
		{"signed as another server peer", ok, req, identity.Entry{ID: "server", PublicKey: outsider.PublicKey, PeerID: outsider.PeerID},
			f.r1000, ErrReplyMismatch, ""},
		{"signature by another key", forged(enc, signAs(t, "outsider", enc)), req, f.server, f.r1000, ErrBadSignature, ""},
		{"signed by an enrolled requester, not an authority", forged(selfEnc, signAs(t, "1000", selfEnc)), req, f.r1000, f.r1000,
			ErrUntrustedSigner, "untrusted signer: 1000 is not a trusted authority"},
		{"signature byte changed", forged(enc, flip(sig, 7)), req, f.server, f.r1000, ErrBadSignature, ""},
		{"signature missing", forged(enc, nil), req, f.server, f.r1000, ErrBadSignature, ""},
		{"statement not a statement", forged([]byte("hello"), sig), req, f.server, f.r1000, ErrMalformed, ""},
		{"reply sealed to another requester", sealedAs(f.r2000.PublicKey, stampReplyTag, EncodeRecord(stampReplyTag, enc, sig)),
			req, f.server, f.r1000, ErrOpen, ""},
		{"reply sealed for another purpose", sealedAs(f.r1000.PublicKey, stampRequestTag, EncodeRecord(stampReplyTag, enc, sig)),
			req, f.server, f.r1000, ErrOpen, ""},
		{"reply record of another type", sealedAs(f.r1000.PublicKey, stampReplyTag, EncodeRecord(stampResponseTag, enc, sig)),
			req, f.server, f.r1000, ErrMalformed, ""},
		{"reply payload garbage", encodeStampResponse(StatusOK, []byte("garbage")), req, f.server, f.r1000, ErrOpen, ""},
		{"not a response record", reply, req, f.server, f.r1000, ErrMalformed, ""},
		{"response with three fields", EncodeRecord(stampResponseTag, []byte(StatusOK), reply, nil), req, f.server, f.r1000, ErrMalformed, ""},
		{"peer mismatch refusal", encodeStampResponse(StatusPeerMismatch, []byte(reason)), req, f.server, f.r1000, ErrRefused, reason},
		{"unknown id refusal", encodeStampResponse(StatusUnknownID, []byte("no key for 9999")), req, f.server, f.r1000, ErrRefused, StatusUnknownID + ": no key for 9999"},
		{"unknown status", encodeStampResponse("maybe", []byte("?")), req, f.server, f.r1000, ErrRefused, "maybe"},
		{"empty status", encodeStampResponse("", reply), req, f.server, f.r1000, ErrRefused, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, gotSig, err := openStampResponse(tc.resp, f.requestKey, tc.req, trustOf(t, f.dir), tc.server, tc.self)
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
	badHash.DocumentHash = badHash.DocumentHash[:HashSize-1]
	badNonce := newRequest("1000", 1, 2)
	badNonce.Nonce = append(badNonce.Nonce, 0)
	good := f.seal(t, newRequest("1000", 1, 2))
	sealedWith := func(pub *rsa.PublicKey, context string, pt []byte) []byte {
		sealed, err := Seal(pub, context, pt)
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
		{"sent by another peer", f.r2000, good, []string{StatusPeerMismatch},
			[]string{`"1000"`, f.r1000.PeerID.String(), f.r2000.PeerID.String()}},
		{"sent by the server's own peer", f.server, good, []string{StatusPeerMismatch}, []string{f.server.PeerID.String()}},
		{"id not in the directory", f.r1000, f.seal(t, newRequest("9999", 1, 2)), []string{StatusUnknownID, StatusBadRequest}, []string{"9999"}},
		{"id that is a path", f.r1000, f.seal(t, pathID), []string{StatusBadRequest, StatusUnknownID}, nil},
		{"sealed to the wrong key", f.r1000, sealedWith(f.r1000.PublicKey, stampRequestTag, newRequest("1000", 1, 2).encode()),
			[]string{StatusBadRequest}, nil},
		{"sealed for another purpose", f.r1000, sealedWith(f.server.PublicKey, stampReplyTag, newRequest("1000", 1, 2).encode()),
			[]string{StatusBadRequest}, nil},
		{"short hash", f.r1000, f.seal(t, badHash), []string{StatusBadRequest}, []string{"hash"}},
		{"long nonce", f.r1000, f.seal(t, badNonce), []string{StatusBadRequest}, []string{"nonce"}},
		{"not sealed", f.r1000, newRequest("1000", 1, 2).encode(), []string{StatusBadRequest}, nil},
		{"empty", f.r1000, nil, []string{StatusBadRequest}, nil},
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
	if st.Serial != 1 {
		t.Fatalf("serial after refusals is %d, want 1", st.Serial)
	}
}

func TestParseStampRequest(t *testing.T) {
	req := newRequest("1000", 3, 4)
	got, err := parseStampRequest(req.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.RequesterID != req.RequesterID || !bytes.Equal(got.DocumentHash, req.DocumentHash) || !bytes.Equal(got.Nonce, req.Nonce) {
		t.Fatalf("parseStampRequest = %+v, want %+v", got, req)
	}
	fields := func() [][]byte {
		return [][]byte{[]byte("1000"), []byte(HashAlgorithm), fill(HashSize, 3), fill(NonceSize, 4)}
	}
	with := func(i int, v []byte) []byte {
		f := fields()
		f[i] = v
		return EncodeRecord(stampRequestTag, f...)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"wrong tag", EncodeRecord(stampReplyTag, fields()...)},
		{"statement tag", EncodeRecord(StatementTag, fields()...)},
		{"three fields", EncodeRecord(stampRequestTag, fields()[:3]...)},
		{"path id", with(0, []byte("../../etc/passwd"))},
		{"empty id", with(0, nil)},
		{"id with NUL", with(0, []byte("1000\x00"))},
		{"other hash algorithm", with(1, []byte("md5"))},
		{"short hash", with(2, fill(HashSize-1, 3))},
		{"empty hash", with(2, nil)},
		{"short nonce", with(3, fill(NonceSize-1, 4))},
		{"trailing byte", append(req.encode(), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStampRequest(tc.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parseStampRequest = %+v, %v; want ErrMalformed", got, err)
			}
		})
	}
}

// Flaw 7: the prototype used local time at second resolution, so stamps
// were ambiguous and could go backwards.
func TestStamperTimeAndSerial(t *testing.T) {
	base := time.Date(2026, 6, 1, 12, 0, 0, 500, time.FixedZone("CEST", 2*3600))
	times := []time.Time{
		base,
		base,                        // clock did not move
		base.Add(-time.Hour),        // clock stepped back an hour
		base.Add(-time.Hour + 1),    // still behind
		base.Add(time.Nanosecond),   // behind what was handed out
		base.Add(time.Second),       // clock ahead again
		base.Add(time.Second).UTC(), // same instant, other zone
		base.Add(2 * time.Second).Local(),
	}
	f := newStampFixture(t, times...)
	want := []time.Time{
		base, base.Add(1), base.Add(2), base.Add(3), base.Add(4),
		base.Add(time.Second), base.Add(time.Second + 1), base.Add(2 * time.Second),
	}
	var prevSerial uint64
	var prev time.Time
	for i := range times {
		serial, got := f.stamper.next()
		if got.Location() != time.UTC {
			t.Errorf("stamp %d: time in %v, want UTC", i, got.Location())
		}
		if !got.Equal(want[i]) {
			t.Errorf("stamp %d: time %s, want %s", i, FormatTime(got), FormatTime(want[i]))
		}
		if i > 0 && !got.After(prev) {
			t.Errorf("stamp %d: time %s not after %s", i, FormatTime(got), FormatTime(prev))
		}
		if serial != prevSerial+1 {
			t.Errorf("stamp %d: serial %d after %d", i, serial, prevSerial)
		}
		prev, prevSerial = got, serial
	}

	// The same through Handle, with the clock stepping back an hour.
	f = newStampFixture(t, base, base.Add(-time.Hour), base.Add(-2*time.Hour))
	prev, prevSerial = time.Time{}, 0
	for i := range 3 {
		_, st, err := f.stamper.Handle(f.r1000.PeerID, f.seal(t, newRequest("1000", byte(i), byte(i))))
		if err != nil {
			t.Fatal(err)
		}
		if st.Time.Location() != time.UTC || !st.Time.After(prev) || st.Serial <= prevSerial {
			t.Fatalf("stamp %d: %s serial %d after %s serial %d", i, FormatTime(st.Time), st.Serial, FormatTime(prev), prevSerial)
		}
		if FormatTime(st.Time) != FormatTime(base.Add(time.Duration(i))) {
			t.Errorf("stamp %d: time %s, want %s", i, FormatTime(st.Time), FormatTime(base.Add(time.Duration(i))))
		}
		prev, prevSerial = st.Time, st.Serial
	}
}

func TestStamperConcurrentNext(t *testing.T) {
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewStamper(nil, identity.Entry{}, nil, func() time.Time { return fixed })
	const workers, each = 8, 200
	var mu sync.Mutex
	serials := map[uint64]bool{}
	times := map[time.Time]bool{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				serial, tm := s.next()
				mu.Lock()
				serials[serial] = true
				times[tm] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(serials) != workers*each || len(times) != workers*each {
		t.Fatalf("%d distinct serials and %d distinct times for %d stamps", len(serials), len(times), workers*each)
	}
	for i := uint64(1); i <= workers*each; i++ {
		if !serials[i] {
			t.Fatalf("serial %d missing", i)
		}
	}
}

func TestNewStamperDefaultClock(t *testing.T) {
	s := NewStamper(nil, identity.Entry{}, nil, nil)
	before := time.Now()
	_, got := s.next()
	if got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) || got.Location() != time.UTC {
		t.Fatalf("default clock gave %v", got)
	}
}
