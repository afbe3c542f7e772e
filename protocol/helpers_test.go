package protocol

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// entry returns the identity entry of a test key ("server", "1000",
// "2000", "outsider"), whether or not a directory holds it.
func entry(t testing.TB, id identity.ID) identity.Entry {
	t.Helper()
	pub := testkeys.Public(t, id)
	pid, err := identity.PeerIDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return identity.Entry{ID: id, PublicKey: pub, PeerID: pid}
}

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// flip returns a copy of b with byte i inverted.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

// sampleTime has a non-zero nanosecond part, so any loss of resolution
// shows.
var sampleTime = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

// sampleStatement is a statement by "server" for requester "1000".
func sampleStatement(t testing.TB) *Statement {
	t.Helper()
	req, srv := entry(t, "1000"), entry(t, "server")
	return &Statement{
		HashAlgorithm: HashAlgorithm,
		DocumentHash:  fill(HashSize, 0xa1),
		Time:          sampleTime,
		Serial:        42,
		RequesterID:   req.ID,
		RequesterPeer: req.PeerID,
		ServerID:      srv.ID,
		ServerPeer:    srv.PeerID,
		Nonce:         fill(NonceSize, 0x5e),
	}
}

func cloneStatement(s *Statement) *Statement {
	c := *s
	c.DocumentHash = bytes.Clone(s.DocumentHash)
	c.Nonce = bytes.Clone(s.Nonce)
	return &c
}

// RSA private-key operations are slow (more so under -race): signatures
// of the same data by the same key are made once per test binary.
var (
	sigMu    sync.Mutex
	sigCache = map[string][]byte{}
)

func signAs(t testing.TB, id identity.ID, data []byte) []byte {
	t.Helper()
	sigMu.Lock()
	defer sigMu.Unlock()
	k := string(id) + "\x00" + string(data)
	if sig, ok := sigCache[k]; ok {
		return bytes.Clone(sig)
	}
	sig, err := Sign(testkeys.Private(t, id), data)
	if err != nil {
		t.Fatal(err)
	}
	sigCache[k] = sig
	return bytes.Clone(sig)
}

// trustOf trusts the authorities ids (default: "server") with their keys
// in dir.
func trustOf(t testing.TB, dir *identity.Directory, ids ...identity.ID) *Trust {
	t.Helper()
	if len(ids) == 0 {
		ids = []identity.ID{identity.ServerID}
	}
	trust, err := NewTrust(dir, nil, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return trust
}
