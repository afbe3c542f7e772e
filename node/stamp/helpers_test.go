package stamp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// logTime has a non-zero nanosecond part, so any loss of resolution shows.
var logTime = time.Date(2026, 3, 4, 5, 6, 7, 890123456, time.UTC)

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// flip returns a copy of b with byte i inverted.
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func cloneStatement(s *protocol.Statement) *protocol.Statement {
	c := *s
	c.DocumentHash = bytes.Clone(s.DocumentHash)
	c.Nonce = bytes.Clone(s.Nonce)
	return &c
}

func signAs(t testing.TB, id identity.ID, data []byte) []byte { return testnet.SignAs(t, id, data) }

func openLog(t testing.TB, dir string) *merklelog.Log { return testnet.OpenLog(t, dir) }

// newSigner starts the authority for "server" on lg; it is closed at
// cleanup.
func newSigner(t testing.TB, lg *merklelog.Log, now func() time.Time) *authority.Authority {
	t.Helper()
	s, err := authority.New(lg, testkeys.Private(t, "server"), testnet.Entry(t, "server"), authority.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// docHash is a distinct document hash per i.
func docHash(i int) []byte {
	h := fill(protocol.HashSize, 0)
	copy(h, fmt.Sprintf("doc-%d", i))
	return h
}

// docNonce is a distinct nonce per i.
func docNonce(i int) []byte {
	n := fill(protocol.NonceSize, 0xee)
	copy(n, fmt.Sprintf("n-%d", i))
	return n
}

type stampResult struct {
	st  *protocol.LogStamp
	err error
}

func wait(t testing.TB, ch <-chan stampResult) (*protocol.LogStamp, error) {
	t.Helper()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("stamp not answered within 20s")
		return nil, nil
	}
}
