package main

import (
	"fmt"
	"io"
	"time"

	"tsnode/identity"
	"tsnode/protocol"
)

// rotateKey is keygen --rotate (PROTOCOL.md §1.6): the current key of id
// signs a rotation statement naming a new key, then the files are
// replaced in an order a crash cannot make unsafe (identity.RotateKeyPair).
func rotateKey(keys string, id identity.ID, passFile string, stdout, stderr io.Writer) error {
	// Refuse before asking for a passphrase and generating a key.
	if err := identity.CheckKeyPair(keys, id); err != nil {
		return err
	}
	pass, err := readPassphrase(passFile, false)
	if err != nil {
		return err
	}
	old, err := identity.LoadPrivateKey(identity.PrivateKeyPath(keys, id), pass, func(w string) {
		fmt.Fprintf(stderr, "tsnode: warning: %s\n", w)
	})
	if err != nil {
		return err
	}
	pub, err := identity.LoadPublicKey(identity.PublicKeyPath(keys, id))
	if err != nil {
		return err
	}
	if !pub.Equal(&old.PublicKey) {
		return fmt.Errorf("%s does not match %s: refusing to rotate a key whose files disagree", identity.PrivateKeyPath(keys, id), identity.PublicKeyPath(keys, id))
	}
	oldPeer, err := identity.PeerIDFromPublicKey(pub)
	if err != nil {
		return err
	}
	key, err := identity.GenerateKey()
	if err != nil {
		return fmt.Errorf("failed to generate key: %w", err)
	}
	newPeer, err := identity.PeerIDFromPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	s, err := protocol.SignRotation(old, &protocol.Rotation{ID: id, OldPeer: oldPeer, NewPeer: newPeer, Time: time.Now()})
	if err != nil {
		return err
	}
	if err := identity.RotateKeyPair(keys, id, old, key, pass, s.Marshal()); err != nil {
		return err
	}
	// What a verifier will load must load.
	dir, err := identity.LoadDirectory(keys)
	if err == nil {
		_, err = protocol.LoadRetiredKeys(keys, dir)
	}
	if err != nil {
		return fmt.Errorf("the key was rotated, but the keys directory does not load: %w", err)
	}
	fmt.Fprintf(stdout, "id          %s\nold peer ID %s\nnew peer ID %s\nrotated at  %s\nprivate key %s (new, encrypted with the same passphrase)\npublic key  %s\n\n",
		id, oldPeer, newPeer, protocol.FormatTime(s.Rotation.Time), identity.PrivateKeyPath(keys, id), identity.PublicKeyPath(keys, id))
	fmt.Fprintf(stdout, "Copy these files into the keys directory of every host (same paths):\n  %s\n  %s\n  %s\n",
		identity.PublicKeyPath(keys, id), identity.RetiredPublicKeyPath(keys, id, oldPeer), identity.RetiredRotationPath(keys, id, oldPeer))
	fmt.Fprintf(stdout, "Receipts signed by the old key before %s stay valid; the old key vouches for nothing after it.\n", protocol.FormatTime(s.Rotation.Time))
	fmt.Fprintf(stdout, "The old private key is now %s: destroy it once every host has these files\n(whoever holds it can still sign backdated statements).\n",
		identity.RetiredPrivateKeyPath(keys, id, oldPeer))
	return nil
}

// printRetired writes id's retired keys under its current key, newest
// first: each with its rotation time and successor.
func printRetired(w io.Writer, id identity.ID, retired []protocol.RetiredKey) {
	for i := len(retired) - 1; i >= 0; i-- {
		k := retired[i]
		if k.ID != id {
			continue
		}
		fmt.Fprintf(w, "\t%s  retired %s, succeeded by %s\n", k.PeerID, protocol.FormatTime(k.RetiredAt), k.Successor)
	}
}
