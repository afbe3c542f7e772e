package identity

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrUnknownID is returned when an id has no public key in the directory,
// ErrUnknownPeer when a peer ID belongs to no id.
var (
	ErrUnknownID   = errors.New("unknown id")
	ErrUnknownPeer = errors.New("unknown peer")
)

// Entry is one identity: its id, RSA-4096 public key and libp2p peer ID.
type Entry struct {
	ID        ID
	PublicKey *rsa.PublicKey
	PeerID    peer.ID
}

// Directory maps ids to public keys and peer IDs, both ways. It is
// read-only after loading, so it is safe for concurrent use.
type Directory struct {
	byID   map[ID]Entry
	byPeer map[peer.ID]Entry
}

// NewDirectory builds a directory from public keys. Two ids with the same
// key are refused: an id must have exactly one peer ID and vice versa.
func NewDirectory(keys map[ID]*rsa.PublicKey) (*Directory, error) {
	d := &Directory{byID: map[ID]Entry{}, byPeer: map[peer.ID]Entry{}}
	for id, pub := range keys {
		if _, err := ParseID(string(id)); err != nil {
			return nil, err
		}
		pid, err := PeerIDFromPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("id %s: %w", id, err)
		}
		if other, dup := d.byPeer[pid]; dup {
			return nil, fmt.Errorf("ids %s and %s share one public key", other.ID, id)
		}
		e := Entry{ID: id, PublicKey: pub, PeerID: pid}
		d.byID[id] = e
		d.byPeer[pid] = e
	}
	return d, nil
}

// LoadDirectory reads every <id>.pem in dir/public. A file that is not a
// well-formed RSA-4096 public key is an error naming that file.
func LoadDirectory(dir string) (*Directory, error) {
	pubDir := filepath.Join(dir, "public")
	files, err := os.ReadDir(pubDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no identity directory at %s (run tsnode keygen first): %w", pubDir, err)
		}
		return nil, fmt.Errorf("failed to read identity directory: %w", err)
	}
	keys := map[ID]*rsa.PublicKey{}
	fileOf := map[peer.ID]string{} // to name both files of a shared key
	for _, f := range files {
		name := f.Name()
		if f.IsDir() || !strings.HasSuffix(name, ".pem") || strings.HasPrefix(name, ".") {
			continue
		}
		id, err := ParseID(strings.TrimSuffix(name, ".pem"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(pubDir, name), err)
		}
		path := filepath.Join(pubDir, name)
		pub, err := LoadPublicKey(path)
		if err != nil {
			return nil, err
		}
		pid, err := PeerIDFromPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if other, dup := fileOf[pid]; dup {
			return nil, fmt.Errorf("%s and %s hold the same public key (peer %s): an id must have a key of its own", other, path, pid)
		}
		fileOf[pid] = path
		keys[id] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("identity directory %s holds no public keys (run tsnode keygen first)", pubDir)
	}
	return NewDirectory(keys)
}

// Lookup returns the entry of id.
func (d *Directory) Lookup(id ID) (Entry, error) {
	e, ok := d.byID[id]
	if !ok {
		return Entry{}, fmt.Errorf("%w %q: no public key for it in the identity directory", ErrUnknownID, id)
	}
	return e, nil
}

// ByPeer returns the entry whose key is p's identity.
func (d *Directory) ByPeer(p peer.ID) (Entry, error) {
	e, ok := d.byPeer[p]
	if !ok {
		return Entry{}, fmt.Errorf("%w %s: its key is not in the identity directory", ErrUnknownPeer, p)
	}
	return e, nil
}

// Has reports whether p is a known peer.
func (d *Directory) Has(p peer.ID) bool {
	_, ok := d.byPeer[p]
	return ok
}

// Entries lists the directory sorted by id.
func (d *Directory) Entries() []Entry {
	out := make([]Entry, 0, len(d.byID))
	for _, e := range d.byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PeerIDFromPublicKey derives the libp2p peer ID of an RSA public key.
func PeerIDFromPublicKey(pub *rsa.PublicKey) (peer.ID, error) {
	lpub, err := LibP2PPublicKey(pub)
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(lpub)
}

// LibP2PPublicKey wraps pub for libp2p.
func LibP2PPublicKey(pub *rsa.PublicKey) (ic.PubKey, error) {
	if err := checkSize("public key", pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to encode public key for libp2p: %w", err)
	}
	lpub, err := ic.UnmarshalRsaPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("failed to convert public key for libp2p: %w", err)
	}
	return lpub, nil
}

// LibP2PPrivateKey wraps key as a libp2p identity. go-libp2p does not
// check the key size, so this does.
func LibP2PPrivateKey(key *rsa.PrivateKey) (ic.PrivKey, error) {
	if err := checkSize("private key", &key.PublicKey); err != nil {
		return nil, err
	}
	priv, _, err := ic.KeyPairFromStdKey(key)
	if err != nil {
		return nil, fmt.Errorf("failed to convert private key for libp2p: %w", err)
	}
	return priv, nil
}
