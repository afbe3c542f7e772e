package protocol

import (
	"bytes"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

func TestStatementRoundTrip(t *testing.T) {
	s := sampleStatement(t)
	enc := s.Encode()
	p, err := ParseStatement(enc)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case p.HashAlgorithm != s.HashAlgorithm:
		t.Errorf("hash algorithm %q", p.HashAlgorithm)
	case !bytes.Equal(p.DocumentHash, s.DocumentHash):
		t.Errorf("hash %x", p.DocumentHash)
	case !p.Time.Equal(s.Time) || p.Time.Location() != time.UTC:
		t.Errorf("time %v", p.Time)
	case p.Serial != s.Serial:
		t.Errorf("serial %d", p.Serial)
	case p.RequesterID != s.RequesterID || p.RequesterPeer != s.RequesterPeer:
		t.Errorf("requester %s %s", p.RequesterID, p.RequesterPeer)
	case p.ServerID != s.ServerID || p.ServerPeer != s.ServerPeer:
		t.Errorf("server %s %s", p.ServerID, p.ServerPeer)
	case !bytes.Equal(p.Nonce, s.Nonce):
		t.Errorf("nonce %x", p.Nonce)
	}
	if !bytes.Equal(p.Encode(), enc) {
		t.Error("re-encoding the parsed statement changes it")
	}
	// The parsed statement does not alias the input.
	enc[len(enc)-1] ^= 0xff
	if !bytes.Equal(p.Nonce, s.Nonce) {
		t.Error("parsed nonce aliases the input bytes")
	}
}

func TestStatementStartsWithDomainTag(t *testing.T) {
	enc := sampleStatement(t).Encode()
	prefix := binary.BigEndian.AppendUint32(nil, uint32(len(StatementTag)))
	prefix = append(prefix, StatementTag...)
	if !bytes.HasPrefix(enc, prefix) {
		t.Fatalf("statement starts %q, want %q", enc[:min(len(enc), len(prefix))], prefix)
	}
	if StatementTag != "tsnode-timestamp-v1" {
		t.Fatalf("StatementTag = %q: changing it invalidates every receipt", StatementTag)
	}
}

var timePattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

func TestFormatTime(t *testing.T) {
	plus1 := time.FixedZone("CET", 3600)
	minus7 := time.FixedZone("MST", -7*3600)
	for _, tc := range []struct {
		name string
		in   time.Time
		want string
	}{
		{"whole seconds", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000000000Z"},
		{"one nanosecond", time.Date(2026, 1, 2, 3, 4, 5, 1, time.UTC), "2026-01-02T03:04:05.000000001Z"},
		{"trailing zeros kept", time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC), "2026-01-02T03:04:05.120000000Z"},
		{"all digits", sampleTime, "2026-01-02T03:04:05.123456789Z"},
		{"zone +01:00", time.Date(2026, 1, 2, 4, 4, 5, 0, plus1), "2026-01-02T03:04:05.000000000Z"},
		{"zone -07:00 across midnight", time.Date(2026, 1, 1, 20, 0, 0, 5, minus7), "2026-01-02T03:00:00.000000005Z"},
		{"local zone", time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).Local(), "2026-01-02T03:04:05.000000006Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FormatTime(tc.in)
			if got != tc.want {
				t.Fatalf("FormatTime = %q, want %q", got, tc.want)
			}
			if !timePattern.MatchString(got) {
				t.Fatalf("%q does not match %s", got, timePattern)
			}
			back, err := ParseTime(got)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tc.in) || back.Location() != time.UTC {
				t.Fatalf("ParseTime(%q) = %v, want %v in UTC", got, back, tc.in)
			}
		})
	}
}

func TestParseTimeRefuses(t *testing.T) {
	for _, s := range []string{
		"",
		"2026-01-02T03:04:05Z",
		"2026-01-02T03:04:05.000000000+01:00",
		"2026-01-02T04:04:05.000000000+01:00",
		"2026-01-02T03:04:05.000000000+00:00",
		"2026-01-02T03:04:05.000000Z",
		"2026-01-02T03:04:05.123456Z",
		"2026-01-02T03:04:05.1234567890Z",
		"2026-01-02T03:04:05.000000000z",
		"2026-01-02t03:04:05.000000000Z",
		"2026-01-02 03:04:05.000000000Z",
		"2026-01-02T03:04:05,000000000Z",
		"2026-01-02T03:04:05.000000000Z ",
		" 2026-01-02T03:04:05.000000000Z",
		"2026-01-02T03:04:05.000000000",
		"2026-02-30T03:04:05.000000000Z",
		"2026-01-02T24:00:00.000000000Z",
		"2026-12-31T23:59:60.000000000Z",
		// Impossible dates and clock times (§2.4).
		"2026-13-01T03:04:05.000000000Z",
		"2026-00-01T03:04:05.000000000Z",
		"2026-01-00T03:04:05.000000000Z",
		"2026-01-32T03:04:05.000000000Z",
		"2026-04-31T03:04:05.000000000Z",
		"2026-02-29T03:04:05.000000000Z", // 2026 is not a leap year
		"2100-02-29T03:04:05.000000000Z", // nor is 2100
		"2026-01-02T03:60:05.000000000Z",
		"2026-06-30T23:59:60.000000000Z",
		"2026-01-02T25:04:05.000000000Z",
		"2026-1-02T03:04:05.000000000Z",
		"26-01-02T03:04:05.000000000Z",
	} {
		t.Run(s, func(t *testing.T) {
			got, err := ParseTime(s)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseTime = %v, %v; want ErrMalformed", got, err)
			}
		})
	}
}

// The edges of the calendar that exist are accepted, so that
// TestParseTimeRefuses cannot pass by refusing every date.
func TestParseTimeCalendarEdges(t *testing.T) {
	for _, s := range []string{
		"2028-02-29T00:00:00.000000000Z",
		"2000-02-29T12:00:00.000000000Z",
		"2026-12-31T23:59:59.999999999Z",
		"2026-04-30T00:00:00.000000000Z",
		"2026-01-31T00:00:00.000000000Z",
	} {
		if _, err := ParseTime(s); err != nil {
			t.Errorf("ParseTime(%q): %v", s, err)
		}
	}
}

// statementFields returns the fields Encode writes after the tag.
func statementFields(s *Statement) [][]byte {
	return [][]byte{
		[]byte(s.HashAlgorithm), s.DocumentHash, []byte(FormatTime(s.Time)), u64(s.Serial),
		[]byte(s.RequesterID), []byte(s.RequesterPeer.String()),
		[]byte(s.ServerID), []byte(s.ServerPeer.String()), s.Nonce,
	}
}

func TestParseStatementRefuses(t *testing.T) {
	s := sampleStatement(t)
	if got := EncodeRecord(StatementTag, statementFields(s)...); !bytes.Equal(got, s.Encode()) {
		t.Fatal("statementFields does not match Encode")
	}
	with := func(i int, v []byte) []byte {
		f := statementFields(s)
		f[i] = v
		return EncodeRecord(StatementTag, f...)
	}
	good := s.Encode()
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"other tag", EncodeRecord("tsnode-timestamp-v2", statementFields(s)...)},
		{"stamp request tag", EncodeRecord(StampRequestTag, statementFields(s)...)},
		{"eight fields", EncodeRecord(StatementTag, statementFields(s)[:8]...)},
		{"ten fields", EncodeRecord(StatementTag, append(statementFields(s), nil)...)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-1]},
		{"hash algorithm sha-1", with(0, []byte("sha-1"))},
		{"hash algorithm SHA-256", with(0, []byte("SHA-256"))},
		{"short hash", with(1, fill(HashSize-1, 1))},
		{"long hash", with(1, fill(HashSize+1, 1))},
		{"time without fraction", with(2, []byte("2026-01-02T03:04:05Z"))},
		{"time with offset", with(2, []byte("2026-01-02T04:04:05.123456789+01:00"))},
		{"serial 7 bytes", with(3, fill(7, 0))},
		{"serial 9 bytes", with(3, fill(9, 0))},
		{"requester id path", with(4, []byte("../../etc/passwd"))},
		{"requester id empty", with(4, nil)},
		{"requester peer garbage", with(5, []byte("not-a-peer-id"))},
		{"requester peer empty", with(5, nil)},
		{"server id with slash", with(6, []byte("a/b"))},
		{"server peer garbage", with(7, []byte("Qm"))},
		{"short nonce", with(8, fill(NonceSize-1, 1))},
		{"long nonce", with(8, fill(NonceSize+1, 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseStatement(tc.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseStatement = %+v, %v; want ErrMalformed", p, err)
			}
		})
	}
}

// Flaw 1: the prototype signed SHA-256 of a constant string, so one
// signature fit every document. The statement binds every field.
func TestStatementBindsEveryField(t *testing.T) {
	s := sampleStatement(t)
	enc := s.Encode()
	srv := entry(t, "server")
	sig := signAs(t, "server", enc)
	if err := VerifySignature(srv.PublicKey, enc, sig); err != nil {
		t.Fatalf("signature does not verify its own statement: %v", err)
	}
	other, outsider := entry(t, "2000"), entry(t, "outsider")
	for _, tc := range []struct {
		name   string
		change func(*Statement)
	}{
		{"hash", func(m *Statement) { m.DocumentHash[HashSize-1] ^= 1 }},
		{"hash algorithm", func(m *Statement) { m.HashAlgorithm = "sha-512" }},
		{"time", func(m *Statement) { m.Time = m.Time.Add(time.Nanosecond) }},
		{"serial", func(m *Statement) { m.Serial++ }},
		{"requester id", func(m *Statement) { m.RequesterID = other.ID }},
		{"requester peer", func(m *Statement) { m.RequesterPeer = other.PeerID }},
		{"server id", func(m *Statement) { m.ServerID = identity.ID("server2") }},
		{"server peer", func(m *Statement) { m.ServerPeer = outsider.PeerID }},
		{"nonce", func(m *Statement) { m.Nonce[0] ^= 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cloneStatement(s)
			tc.change(m)
			menc := m.Encode()
			if bytes.Equal(menc, enc) {
				t.Fatal("changing the field does not change the encoding")
			}
			if err := VerifySignature(srv.PublicKey, menc, sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifySignature over the changed statement = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestSignaturesDifferPerDocument(t *testing.T) {
	a := sampleStatement(t)
	b := cloneStatement(a)
	b.DocumentHash = fill(HashSize, 0xb2)
	sigA := signAs(t, "server", a.Encode())
	sigB := signAs(t, "server", b.Encode())
	if bytes.Equal(sigA, sigB) {
		t.Fatal("two documents got the same signature")
	}
	pub := &testkeys.Private(t, "server").PublicKey
	if err := VerifySignature(pub, b.Encode(), sigA); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature of one document verifies for another: %v", err)
	}
}

func TestVerifySignatureRefuses(t *testing.T) {
	enc := sampleStatement(t).Encode()
	sig := signAs(t, "server", enc)
	srv := &testkeys.Private(t, "server").PublicKey
	for _, tc := range []struct {
		name string
		pub  *rsa.PublicKey
		data []byte
		sig  []byte
	}{
		{"other key", &testkeys.Private(t, "outsider").PublicKey, enc, sig},
		{"flipped first byte", srv, enc, flip(sig, 0)},
		{"flipped last byte", srv, enc, flip(sig, len(sig)-1)},
		{"truncated", srv, enc, sig[:len(sig)-1]},
		{"empty", srv, enc, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifySignature(tc.pub, tc.data, tc.sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifySignature = %v, want ErrBadSignature", err)
			}
		})
	}
}

func FuzzParseStatement(f *testing.F) {
	addVectorSeeds(f, "ParseStatement", "ParseLeaf")
	s := sampleStatement(f)
	enc := s.Encode()
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add(append(bytes.Clone(enc), 0))
	f.Add(flip(enc, 3))
	f.Add(EncodeRecord(StatementTag))
	f.Add([]byte{})
	f.Add([]byte("tsnode-timestamp-v1<!>sha-256<!>"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseStatement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		re := p.Encode()
		q, err := ParseStatement(re)
		if err != nil {
			t.Fatalf("re-encoding of a parsed statement does not parse: %v", err)
		}
		if !bytes.Equal(q.Encode(), re) {
			t.Fatal("encoding is not stable")
		}
	})
}
