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

// PastPath holds every certificate of id that the chain and root files
// held before they were replaced (signing certificates renewed, roots of
// rotated identity keys), oldest first: keys/public/tsa/<id>.past.pem. A
// token without certificates, signed before a renewal or a rotation, is
// checked with it.
func PastPath(keysDir string, id identity.ID) string {
	return filepath.Join(keysDir, "public", "tsa", string(id)+".past.pem")
}

// Keys are what the TSA signs with: the signing certificate and its key,
// and the root above it.
type Keys struct {
	Cert, Root *x509.Certificate
	Signer     crypto.Signer
	// Made names the files written by Ensure, for its caller to print.
	Made []string
}

// ChainPEM is the chain as served at /certchain: signing certificate, root.
func (k *Keys) ChainPEM() []byte { return protocol.EncodeCertsPEM(k.Cert, k.Root) }

// Config is where an authority's TSA keys and certificates live and how
// they are made.
type Config struct {
	KeysDir, DataDir string
	ID               identity.ID
	// Key is the identity key: the root's key, which certifies the
	// signing key.
	Key *rsa.PrivateKey
	// Mode is KeyECDSA (the default) or KeyIdentity.
	Mode string
	// Lifetime is how long a signing certificate is valid (0:
	// protocol.TSALeafValidity).
	Lifetime time.Duration
}

func (c *Config) lifetime() time.Duration {
	if c.Lifetime <= 0 {
		return protocol.TSALeafValidity
	}
	return c.Lifetime
}

// RenewWithin is how close to its end the signing certificate is renewed.
func (c *Config) RenewWithin() time.Duration { return protocol.TSARenewWithin(c.lifetime()) }

// EnsureKeys is Config.Ensure with the default lifetime.
func EnsureKeys(keysDir, dataDir string, id identity.ID, key *rsa.PrivateKey, mode string, now time.Time) (*Keys, error) {
	c := &Config{KeysDir: keysDir, DataDir: dataDir, ID: id, Key: key, Mode: mode}
	return c.Ensure(now)
}

// Ensure loads the TSA keys, making what is missing or due: a root
// certificate for the identity key (again if it is for another key,
// after a rotation, or ends within protocol.TSARenewBefore), the signing
// key (mode KeyECDSA: made once, kept in DataDir), and a signing
// certificate under the root (again if it is not for the signing key or
// the root, ends within RenewWithin, or ends later than Lifetime from
// now). What a root or chain file held before it is replaced goes into
// the past file first (PastPath), so that the tokens it signed stay
// verifiable without certificates of their own.
func (c *Config) Ensure(now time.Time) (*Keys, error) {
	k := &Keys{}
	rootPath, chainPath := RootPath(c.KeysDir, c.ID), ChainPath(c.KeysDir, c.ID)
	oldRoot, err := readCerts(rootPath, "root certificate")
	if err != nil {
		return nil, fmt.Errorf("%w (remove it to make a new one)", err)
	}
	if k.Root = usableRoot(oldRoot, c.Key, now); k.Root == nil {
		if k.Root, err = protocol.NewTSARoot(c.ID, c.Key, now); err != nil {
			return nil, err
		}
		if err := c.retire(k, oldRoot); err != nil {
			return nil, err
		}
		if err := writePublic(rootPath, protocol.EncodeCertsPEM(k.Root)); err != nil {
			return nil, err
		}
		k.Made = append(k.Made, rootPath)
	}
	switch c.Mode {
	case KeyIdentity:
		k.Signer = authority.SignerFor(c.Key)
	case KeyECDSA, "":
		made, err := ensureECKey(KeyPath(c.DataDir), &k.Signer)
		if err != nil {
			return nil, err
		}
		if made {
			k.Made = append(k.Made, KeyPath(c.DataDir))
		}
	default:
		return nil, fmt.Errorf("--tsa-key %q: want %s or %s", c.Mode, KeyECDSA, KeyIdentity)
	}
	oldChain, err := readCerts(chainPath, "chain")
	if err != nil {
		return nil, fmt.Errorf("%w (remove it to make a new one)", err)
	}
	if k.Cert = c.usableLeaf(oldChain, k.Root, k.Signer.Public(), now); k.Cert == nil {
		if k.Cert, err = protocol.NewTSALeafCert(c.ID, k.Root, c.Key, k.Signer.Public(), now, c.lifetime()); err != nil {
			return nil, err
		}
		if err := c.retire(k, oldChain); err != nil {
			return nil, err
		}
		if err := writePublic(chainPath, k.ChainPEM()); err != nil {
			return nil, err
		}
		k.Made = append(k.Made, chainPath)
	}
	return k, nil
}

// readCerts reads the certificates of the PEM file at path; none if it
// is missing; an error naming it if it is unreadable or not certificates.
func readCerts(path, what string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("RFC 3161 %s: %w", what, err)
	}
	certs, err := protocol.ParseCertsPEM(b)
	if err != nil {
		return nil, fmt.Errorf("RFC 3161 %s %s: %v", what, path, err)
	}
	return certs, nil
}

// usableRoot is the root certificate of a root file if it is one
// self-signed certificate for key, not due for renewal; else nil.
func usableRoot(certs []*x509.Certificate, key *rsa.PrivateKey, now time.Time) *x509.Certificate {
	if len(certs) != 1 {
		return nil
	}
	root := certs[0]
	if !key.PublicKey.Equal(root.PublicKey) || root.CheckSignatureFrom(root) != nil ||
		!now.Add(protocol.TSARenewBefore).Before(root.NotAfter) {
		return nil
	}
	return root
}

// usableLeaf is the signing certificate of a chain file if the chain is
// (leaf, root) with the profile of §14.1, for pub, not due for renewal
// and not valid longer than the lifetime allows; else nil.
func (c *Config) usableLeaf(chain []*x509.Certificate, root *x509.Certificate, pub crypto.PublicKey, now time.Time) *x509.Certificate {
	if len(chain) != 2 || !chain[1].Equal(root) || protocol.CheckTSAChain(chain, &c.Key.PublicKey) != nil {
		return nil
	}
	leaf := chain[0]
	if p, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) ||
		!now.Add(c.RenewWithin()).Before(leaf.NotAfter) || leaf.NotAfter.After(now.Add(c.lifetime())) {
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
