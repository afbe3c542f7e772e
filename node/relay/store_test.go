package relay

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
)

// What a verifier killed during relays leaves in its store (a spooled
// document, a half-assembled folder, a folder without its document) is
// cleaned or replaced: relaying the receipt again stores it whole.
func TestStoreAfterAKill(t *testing.T) {
	store := t.TempDir()
	doc := bytes.Repeat([]byte("document after a kill\n"), 1000)
	h := sha256.Sum256(doc)
	rc := stampDoc(t, h[:])
	st, err := rc.Statement()
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(store, string(st.ServerID)+"-0")
	for _, p := range []string{folder, filepath.Join(store, ".incoming-123.d")} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(store, ".incoming-456"), []byte("half a document"), 0o600); err != nil {
		t.Fatal(err)
	}

	verifier := testnet.NewHost(t, "2000", testnet.Transports[0].Listen)
	dir := testkeys.Directory(t, "server", "1000", "2000")
	svc, err := New(verifier, testkeys.Private(t, "2000"), testnet.Entry(t, "2000"), dir, testnet.Trust(t, dir), WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	for _, left := range []string{".incoming-123.d", ".incoming-456"} {
		if _, err := os.Stat(filepath.Join(store, left)); !os.IsNotExist(err) {
			t.Errorf("%s left in the store after a start: %v", left, err)
		}
	}
	c := &Client{Host: testnet.ClientOf(t, "1000", verifier), Self: testnet.Entry(t, "1000"), Verifier: testnet.Entry(t, "2000")}
	for range 2 { // the second time, the whole folder stays as it is
		v, err := c.Relay(testnet.Ctx(t), rc, bytes.NewReader(doc), int64(len(doc)))
		if err != nil || !v.Valid() {
			t.Fatalf("relay: %v, %v", v, err)
		}
		got, err := os.ReadFile(filepath.Join(folder, "document"))
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("stored document: %d bytes, %v; want the relayed one", len(got), err)
		}
		if r, err := os.ReadFile(filepath.Join(folder, "receipt.json")); err != nil || !bytes.Equal(r, rc.Marshal()) {
			t.Fatalf("stored receipt: %v", err)
		}
		entries, _ := os.ReadDir(store)
		if len(entries) != 1 {
			t.Fatalf("store holds %d entries, want only %s", len(entries), folder)
		}
	}
}
