// Package testkeys serves the TEST-ONLY RSA keys in testdata/ to tests.
// Their passphrase is public (below): never use them outside tests.
// RSA-4096 key generation takes seconds, so tests share these instead of
// making keys per test case.
package testkeys

import (
	"crypto/rsa"
	"embed"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tsnode/tsnode/identity"
)

// Passphrase of every test-only key in testdata/.
const Passphrase = "test-only-passphrase"

//go:embed testdata
var files embed.FS

// File returns the bytes of testdata/<name>.
func File(t testing.TB, name string) []byte {
	t.Helper()
	b, err := files.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("test key file: %v", err)
	}
	return b
}

var (
	mu    sync.Mutex
	cache = map[identity.ID]*rsa.PrivateKey{}
)

// Private returns the decrypted test key of id ("server", "1000", "2000"
// or "outsider"), decrypting each file once per test binary.
func Private(t testing.TB, id identity.ID) *rsa.PrivateKey {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if k, ok := cache[id]; ok {
		return k
	}
	name := "private/" + string(id) + ".pem"
	k, err := identity.ParsePrivateKey(name, File(t, name), []byte(Passphrase))
	if err != nil {
		t.Fatalf("test key %s: %v", id, err)
	}
	cache[id] = k
	return k
}

var pubCache = map[identity.ID]*rsa.PublicKey{}

// Public returns the public test key of id from testdata/public/, without
// decrypting the private key (600,000 PBKDF2 iterations: a fuzz worker
// would spend its first seconds there).
func Public(t testing.TB, id identity.ID) *rsa.PublicKey {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if k, ok := pubCache[id]; ok {
		return k
	}
	name := "public/" + string(id) + ".pem"
	k, err := identity.ParsePublicKey(name, File(t, name))
	if err != nil {
		t.Fatalf("test key %s: %v", id, err)
	}
	pubCache[id] = k
	return k
}

// Directory returns an identity directory holding the public keys of ids.
func Directory(t testing.TB, ids ...identity.ID) *identity.Directory {
	t.Helper()
	keys := map[identity.ID]*rsa.PublicKey{}
	for _, id := range ids {
		keys[id] = Public(t, id)
	}
	d, err := identity.NewDirectory(keys)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// WriteKeysDir lays out a keys directory (private/ 0600, public/) for ids
// under dir, as tsnode keygen would.
func WriteKeysDir(t testing.TB, dir string, ids ...identity.ID) {
	t.Helper()
	for _, id := range ids {
		for _, sub := range []string{"private", "public"} {
			data, err := fs.ReadFile(files, "testdata/"+sub+"/"+string(id)+".pem")
			if err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o644)
			if sub == "private" {
				mode = 0o600
			}
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, sub, string(id)+".pem"), data, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
}
