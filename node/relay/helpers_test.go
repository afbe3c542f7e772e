package relay

import (
	"bytes"
	"context"
	"crypto/cipher"
	"testing"
	"time"

	"tsnode/internal/logsigner"
	"tsnode/internal/merklelog"
	"tsnode/internal/testkeys"
	"tsnode/internal/testnet"
	"tsnode/protocol"
)

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// stampDoc has the test server stamp a document hash on a log of its own
// and returns the v2 receipt.
func stampDoc(t testing.TB, hash []byte) *protocol.Receipt {
	t.Helper()
	lg, err := merklelog.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lg.Close() })
	signer, err := logsigner.NewLogSigner(lg, testkeys.Private(t, "server"), testnet.Entry(t, "server"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(signer.Close)
	type result struct {
		st  *protocol.LogStamp
		err error
	}
	ch := make(chan result, 1)
	signer.Submit(testnet.Entry(t, "1000"), hash, fill(protocol.NonceSize, 1), func(st *protocol.LogStamp, err error) { ch <- result{st, err} })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.st.Receipt()
	case <-ctx.Done():
		t.Fatal("no stamp within 20 s")
		return nil
	}
}

// testGCM is an AES-256-GCM with a key of bytes keyByte.
func testGCM(t testing.TB, keyByte byte) cipher.AEAD {
	t.Helper()
	aead, err := protocol.NewGCM(fill(protocol.SessionKeySize, keyByte))
	if err != nil {
		t.Fatal(err)
	}
	return aead
}
