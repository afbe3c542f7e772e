// Command gen writes the TEST-ONLY keys in internal/testkeys/testdata.
// Run once from the repository root: go run ./internal/testkeys/gen
// (go run ./internal/testkeys/gen ID... adds the keys of those ids only).
// Never use these keys for anything but tests: their passphrase is public.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"log"
	"os"
	"path/filepath"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

func main() {
	dir := filepath.Join("internal", "testkeys", "testdata")
	if len(os.Args) > 1 {
		for _, id := range os.Args[1:] {
			key, err := identity.GenerateKey()
			if err != nil {
				log.Fatal(err)
			}
			must(identity.WriteKeyPair(dir, identity.ID(id), key, []byte(testkeys.Passphrase), false))
		}
		return
	}
	for _, id := range []identity.ID{"server", "1000", "2000", "outsider", "3000", "3001", "3002"} {
		key, err := identity.GenerateKey()
		if err != nil {
			log.Fatal(err)
		}
		if err := identity.WriteKeyPair(dir, id, key, []byte(testkeys.Passphrase), false); err != nil {
			log.Fatal(err)
		}
	}
	// A 2048-bit key, to test that tsnode refuses it.
	small, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	priv, err := identity.EncodePrivateKey(small, []byte(testkeys.Passphrase))
	if err != nil {
		log.Fatal(err)
	}
	pub, err := identity.EncodePublicKey(&small.PublicKey)
	if err != nil {
		log.Fatal(err)
	}
	must(os.WriteFile(filepath.Join(dir, "small-2048.pem"), priv, 0o600))
	must(os.WriteFile(filepath.Join(dir, "small-2048.pub.pem"), pub, 0o644))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
