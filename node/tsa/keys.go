package tsa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// Signing keys, as --tsa-key names them.
const (
	// KeyECDSA is an online ECDSA P-256 key of its own, in --data (the default).
	KeyECDSA = "ecdsa-p256"
	// KeyIdentity signs tokens with the authority's RSA-4096 identity key.
	KeyIdentity = "identity"
)

// ChainPath is where the chain of id (its signing certificate, then its
// root) is published: keys/public/tsa/<id>.chain.pem, beside the public
// keys, so that verifiers get it with the directory. (A .pem file in
// public/ itself would be read as a public key.)
func ChainPath(keysDir string, id identity.ID) string {
	return filepath.Join(keysDir, "public", "tsa", string(id)+".chain.pem")
}

// RootPath is the root certificate of id alone: keys/public/tsa/<id>.root.pem.
func RootPath(keysDir string, id identity.ID) string {
	return filepath.Join(keysDir, "public", "tsa", string(id)+".root.pem")
}

// KeyPath is the online signing key in the data directory (0600).
func KeyPath(dataDir string) string { return filepath.Join(dataDir, "tsa-signing-key.pem") }

// Keys are what the TSA signs with: the signing certificate and its key,
// and the root above it.
type Keys struct {
	Cert, Root *x509.Certificate
	Signer     crypto.Signer
	// Made names the files written by EnsureKeys, for its caller to print.
	Made []string
}

// ChainPEM is the chain as served at /certchain: signing certificate, root.
func (k *Keys) ChainPEM() []byte { return protocol.EncodeCertsPEM(k.Cert, k.Root) }

// EnsureKeys loads the TSA keys of id, making what is missing or due: a
// root certificate for the identity key (again if it is for another key,
// after a rotation, or ends within protocol.TSARenewBefore), the signing
// key (mode KeyECDSA: made once, kept in dataDir), and a signing
// certificate under the root (again if it is not for the signing key or
// the root, or ends within protocol.TSARenewBefore).
func EnsureKeys(keysDir, dataDir string, id identity.ID, key *rsa.PrivateKey, mode string, now time.Time) (*Keys, error) {
	k := &Keys{}
	root, err := loadRoot(RootPath(keysDir, id), key, now)
	if err != nil {
		return nil, err
	}
	if root == nil {
		if root, err = protocol.NewTSARoot(id, key, now); err != nil {
			return nil, err
		}
		if err := writePublic(RootPath(keysDir, id), protocol.EncodeCertsPEM(root)); err != nil {
			return nil, err
		}
		k.Made = append(k.Made, RootPath(keysDir, id))
	}
	k.Root = root
	switch mode {
	case KeyIdentity:
		k.Signer = authority.SignerFor(key)
	case KeyECDSA, "":
		made, err := ensureECKey(KeyPath(dataDir), &k.Signer)
		if err != nil {
			return nil, err
		}
		if made {
			k.Made = append(k.Made, KeyPath(dataDir))
		}
	default:
		return nil, fmt.Errorf("--tsa-key %q: want %s or %s", mode, KeyECDSA, KeyIdentity)
	}
	if k.Cert = loadLeaf(ChainPath(keysDir, id), root, k.Signer.Public(), &key.PublicKey, now); k.Cert == nil {
		if k.Cert, err = protocol.NewTSALeafCert(id, root, key, k.Signer.Public(), now); err != nil {
			return nil, err
		}
		if err := writePublic(ChainPath(keysDir, id), k.ChainPEM()); err != nil {
			return nil, err
		}
		k.Made = append(k.Made, ChainPath(keysDir, id))
	}
	return k, nil
}

// loadRoot is the root certificate at path if it is for key and not due
// for renewal; nil if it is missing or not; an error if unreadable.
func loadRoot(path string, key *rsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("RFC 3161 root certificate: %w", err)
	}
	certs, err := protocol.ParseCertsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("RFC 3161 root certificate %s: %v (remove it to make a new one)", path, err)
	}
	root := certs[0]
	if len(certs) != 1 || !key.PublicKey.Equal(root.PublicKey) || root.CheckSignatureFrom(root) != nil ||
		!now.Add(protocol.TSARenewBefore).Before(root.NotAfter) {
		return nil, nil
	}
	return root, nil
}

// loadLeaf is the signing certificate of the chain at path if the chain
// is (leaf, root) with the profile of §14.1, for pub, and not due; else nil.
func loadLeaf(path string, root *x509.Certificate, pub crypto.PublicKey, idKey *rsa.PublicKey, now time.Time) *x509.Certificate {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	chain, err := protocol.ParseCertsPEM(b)
	if err != nil || len(chain) != 2 || !chain[1].Equal(root) || protocol.CheckTSAChain(chain, idKey) != nil {
		return nil
	}
	leaf := chain[0]
	if p, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) ||
		!now.Add(protocol.TSARenewBefore).Before(leaf.NotAfter) {
		return nil
	}
	return leaf
}

// ensureECKey loads the P-256 key at path into *s, or makes one (0600).
func ensureECKey(path string, s *crypto.Signer) (made bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return false, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return false, fmt.Errorf("RFC 3161 signing key: %w", err)
		}
		if err := durable.ReplaceFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return false, fmt.Errorf("RFC 3161 signing key: %w", err)
		}
		*s = key
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("RFC 3161 signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return false, fmt.Errorf("RFC 3161 signing key %s: not a PEM PRIVATE KEY", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return false, fmt.Errorf("RFC 3161 signing key %s: %v", path, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return false, fmt.Errorf("RFC 3161 signing key %s: not an ECDSA P-256 key", path)
	}
	*s = ec
	return false, nil
}

// writePublic replaces the public file at path (0644), making its folder.
func writePublic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("RFC 3161 certificates: %w", err)
	}
	if err := durable.ReplaceFile(path, data, 0o644); err != nil {
		return fmt.Errorf("RFC 3161 certificates: %w", err)
	}
	return nil
}
