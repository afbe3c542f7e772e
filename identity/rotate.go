package identity

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/tsnode/tsnode/internal/durable"
)

// RetiredDir is the folder, under public/ and under private/, that holds
// the keys a rotation replaced (PROTOCOL.md §1.6).
const RetiredDir = "retired"

// Suffixes of a retired key's files under public/retired/.
const (
	RetiredKeySuffix      = ".pem"
	RetiredRotationSuffix = ".rotation"
)

// retiredName is the stem of a retired key's files: <id>-<peer ID>.
func retiredName(id ID, p peer.ID) string { return string(id) + "-" + p.String() }

// RetiredPublicKeyPath is public/retired/<id>-<peer ID>.pem: the public
// key of id that peer p had before a rotation.
func RetiredPublicKeyPath(dir string, id ID, p peer.ID) string {
	return filepath.Join(dir, "public", RetiredDir, retiredName(id, p)+RetiredKeySuffix)
}

// RetiredRotationPath is public/retired/<id>-<peer ID>.rotation: the
// rotation statement that key signed.
func RetiredRotationPath(dir string, id ID, p peer.ID) string {
	return filepath.Join(dir, "public", RetiredDir, retiredName(id, p)+RetiredRotationSuffix)
}

// RetiredPrivateKeyPath is private/retired/<id>-<peer ID>.pem (0600):
// where a rotation leaves the old private key, to be destroyed once
// every host has the new public key and the rotation statement.
func RetiredPrivateKeyPath(dir string, id ID, p peer.ID) string {
	return filepath.Join(dir, "private", RetiredDir, retiredName(id, p)+".pem")
}

// ParseRetiredName splits the stem of a retired key's file name,
// <id>-<peer ID>, at its last '-' (peer IDs hold none).
func ParseRetiredName(stem string) (ID, peer.ID, error) {
	i := strings.LastIndexByte(stem, '-')
	if i < 0 {
		return "", "", fmt.Errorf("file name %q is not <id>-<peer ID>", stem)
	}
	id, err := ParseID(stem[:i])
	if err != nil {
		return "", "", err
	}
	p, err := peer.Decode(stem[i+1:])
	if err != nil || p.String() != stem[i+1:] {
		return "", "", fmt.Errorf("file name %q does not end in a peer ID", stem)
	}
	return id, p, nil
}

// RotateKeyPair replaces id's key pair under dir by newKey after a
// rotation from old, whose signed statement is rotation (the bytes of
// the .rotation file). The writes are ordered so that a crash at any
// point leaves the old private key on disk, and never a new public key
// without the rotation statement that vouches for it:
//
//  1. public/retired/<id>-<old peer>.pem and .rotation;
//  2. private/retired/<id>-<old peer>.pem, a copy of private/<id>.pem
//     (mode 0600, folder 0700);
//  3. the new private/<id>.pem, replacing the old one in one rename;
//  4. the new public/<id>.pem.
//
// Every file is written through a temporary file and a rename. A crash
// after 1 and before 3 leaves the old key current and also retired,
// which LoadRetiredKeys refuses; running the rotation again repairs it.
func RotateKeyPair(dir string, id ID, old, newKey *rsa.PrivateKey, passphrase, rotation []byte) error {
	if _, err := ParseID(string(id)); err != nil {
		return err
	}
	oldPeer, err := PeerIDFromPublicKey(&old.PublicKey)
	if err != nil {
		return err
	}
	oldPriv, err := os.ReadFile(PrivateKeyPath(dir, id))
	if err != nil {
		return fmt.Errorf("failed to read the current private key: %w", err)
	}
	oldPub, err := EncodePublicKey(&old.PublicKey)
	if err != nil {
		return err
	}
	newPriv, err := EncodePrivateKey(newKey, passphrase)
	if err != nil {
		return err
	}
	newPub, err := EncodePublicKey(&newKey.PublicKey)
	if err != nil {
		return err
	}
	pubRetired := filepath.Join(dir, "public", RetiredDir)
	privRetired := filepath.Join(dir, "private", RetiredDir)
	if err := os.MkdirAll(pubRetired, 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", pubRetired, err)
	}
	if err := os.MkdirAll(privRetired, 0o700); err != nil {
		return fmt.Errorf("failed to create %s: %w", privRetired, err)
	}
	if err := os.Chmod(privRetired, 0o700); err != nil {
		return fmt.Errorf("failed to restrict %s: %w", privRetired, err)
	}
	steps := []struct {
		path string
		data []byte
		perm fs.FileMode
	}{
		{RetiredPublicKeyPath(dir, id, oldPeer), oldPub, 0o644},
		{RetiredRotationPath(dir, id, oldPeer), rotation, 0o644},
		{RetiredPrivateKeyPath(dir, id, oldPeer), oldPriv, 0o600},
		{PrivateKeyPath(dir, id), newPriv, 0o600},
		{PublicKeyPath(dir, id), newPub, 0o644},
	}
	for _, s := range steps {
		if err := writeFileAtomic(s.path, s.data, s.perm); err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return err
		}
	}
	return nil
}

// CheckKeyPair fails unless both key files of id exist under dir: a
// rotation needs a current key.
func CheckKeyPair(dir string, id ID) error {
	for _, p := range []string{PrivateKeyPath(dir, id), PublicKeyPath(dir, id)} {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist: %s has no current key to rotate (create one with tsnode keygen --id %s)", p, id, id)
		} else if err != nil {
			return fmt.Errorf("failed to check %s: %w", p, err)
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	return nil
}

// WritePublicKey writes dir/public/<id>.pem (through a temporary file
// and a rename). keygen --rotate uses it to finish a rotation interrupted
// after the new private key was written.
func WritePublicKey(dir string, id ID, pub *rsa.PublicKey) error {
	if _, err := ParseID(string(id)); err != nil {
		return err
	}
	b, err := EncodePublicKey(pub)
	if err != nil {
		return err
	}
	path := PublicKeyPath(dir, id)
	if err := writeFileAtomic(path, b, 0o644); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}
