package relay

import (
	"bytes"
	"crypto/cipher"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

func fill(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

// stampDoc has the test server stamp a document hash on a log of its own
// and returns the v2 receipt.
func stampDoc(t testing.TB, hash []byte) *protocol.Receipt {
	t.Helper()
	lg := testnet.OpenLog(t, t.TempDir())
	signer, err := authority.New(lg, testkeys.Private(t, "server"), testnet.Entry(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { signer.Close() })
	st, err := signer.Add(testnet.Ctx(t), authority.Entry{Requester: testnet.Entry(t, "1000"), Hash: hash, Nonce: fill(protocol.NonceSize, 1)})()
	if err != nil {
		t.Fatal(err)
	}
	return st.Receipt()
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
