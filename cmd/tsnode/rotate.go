package main

import (
	"crypto/rsa"
	"fmt"
	"io"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// rotateKey is keygen --rotate (PROTOCOL.md §1.6): the current key of id
// signs a rotation statement naming a new key, then the files are
// replaced in an order a crash cannot make unsafe (identity.RotateKeyPair).
func rotateKey(keys string, id identity.ID, passFile string, mode *keyMode, stdout io.Writer) error {
	// Refuse before asking for a passphrase and generating a key.
	if err := identity.CheckKeyPair(keys, id); err != nil {
		return err
	}
	pass, err := readPassphrase(passFile, false, mode)
	if err != nil {
		return err
	}
	old, err := identity.LoadPrivateKey(identity.PrivateKeyPath(keys, id), pass, mode.allowInsecure())
	if err != nil {
		return mode.explain(err)
	}
	pub, err := identity.LoadPublicKey(identity.PublicKeyPath(keys, id))
	if err != nil {
		return err
	}
	if !pub.Equal(&old.PublicKey) {
		if done, err := finishRotation(keys, id, old, pub, stdout); done || err != nil {
			return err
		}
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

// finishRotation completes a rotation that stopped after writing the new
// private key and before the new public key: the public key on disk is
// retired, and its rotation statement names the private key on disk as
// its successor. done reports whether that was the case.
func finishRotation(keys string, id identity.ID, key *rsa.PrivateKey, pub *rsa.PublicKey, stdout io.Writer) (done bool, err error) {
	pubPeer, err := identity.PeerIDFromPublicKey(pub)
	if err != nil {
		return false, err
	}
	keyPeer, err := identity.PeerIDFromPublicKey(&key.PublicKey)
	if err != nil {
		return false, err
	}
	s, err := protocol.ReadRotationFile(identity.RetiredRotationPath(keys, id, pubPeer))
	if err != nil || s.Rotation.ID != id || s.Rotation.NewPeer != keyPeer || s.Verify(pub) != nil {
		return false, nil
	}
	if err := identity.WritePublicKey(keys, id, &key.PublicKey); err != nil {
		return true, err
	}
	fmt.Fprintf(stdout, "finished an interrupted rotation of %s from %s to %s (rotated at %s): wrote %s\n"+
		"Copy it and public/retired/ to every host, then destroy %s.\n",
		id, pubPeer, keyPeer, protocol.FormatTime(s.Rotation.Time), identity.PublicKeyPath(keys, id), identity.RetiredPrivateKeyPath(keys, id, pubPeer))
	return true, nil
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
