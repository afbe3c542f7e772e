package protocol

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
)

// Key rotation (PROTOCOL.md §1.6): an authority replaces its key by
// signing, with the old key, a statement naming the old and the new peer
// ID and the time of the rotation. Verifiers keep the old public key and
// the statement, so what the old key signed before that time stays valid.

// RotationTag is the tag of the signed rotation record and the format of
// a rotation file.
const RotationTag = "tsnode-key-rotation-v1"

// ErrMalformedRotation: a rotation file or record that does not parse,
// or whose readable fields differ from the signed ones. ErrBadRotation:
// a well-formed rotation statement that does not verify.
var (
	ErrMalformedRotation = errors.New("malformed rotation statement")
	ErrBadRotation       = errors.New("bad rotation statement")
)

// Rotation says that id's key OldPeer was replaced by NewPeer at Time.
type Rotation struct {
	ID      identity.ID
	OldPeer peer.ID
	NewPeer peer.ID
	Time    time.Time
}

// Encode returns the canonical bytes that are signed.
func (r *Rotation) Encode() []byte {
	return EncodeRecord(RotationTag, []byte(r.ID), []byte(r.OldPeer.String()), []byte(r.NewPeer.String()), []byte(FormatTime(r.Time)))
}

// ParseRotation decodes canonical rotation bytes.
func ParseRotation(b []byte) (*Rotation, error) {
	f, err := DecodeRecord(b, RotationTag, 4)
	if err != nil {
		return nil, err
	}
	r := &Rotation{}
	if r.ID, err = identity.ParseID(string(f[0])); err != nil {
		return nil, fmt.Errorf("%w: rotation id: %v", ErrMalformed, err)
	}
	if r.OldPeer, err = parsePeer("old peer ID", f[1]); err != nil {
		return nil, err
	}
	if r.NewPeer, err = parsePeer("new peer ID", f[2]); err != nil {
		return nil, err
	}
	if r.Time, err = ParseTime(string(f[3])); err != nil {
		return nil, err
	}
	return r, nil
}

// parsePeer decodes a peer ID field, refusing any spelling but the
// canonical one (so the bytes re-encode identically).
func parsePeer(name string, b []byte) (peer.ID, error) {
	p, err := peer.Decode(string(b))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
	}
	if p.String() != string(b) {
		return "", fmt.Errorf("%w: %s %q is not in canonical form", ErrMalformed, name, b)
	}
	return p, nil
}

// SignedRotation is a rotation statement with the old key's signature
// over its encoding.
type SignedRotation struct {
	Rotation  *Rotation
	Encoded   []byte
	Signature []byte
}

// SignRotation signs r with old, which must be the key of r.OldPeer.
func SignRotation(old *rsa.PrivateKey, r *Rotation) (*SignedRotation, error) {
	pid, err := identity.PeerIDFromPublicKey(&old.PublicKey)
	if err != nil {
		return nil, err
	}
	if pid != r.OldPeer {
		return nil, fmt.Errorf("rotation of %s: the signing key is peer %s, the statement's old peer is %s", r.ID, pid, r.OldPeer)
	}
	if r.OldPeer == r.NewPeer {
		return nil, fmt.Errorf("rotation of %s: the old and the new peer ID are the same (%s)", r.ID, r.OldPeer)
	}
	enc := r.Encode()
	sig, err := Sign(old, enc)
	if err != nil {
		return nil, err
	}
	return &SignedRotation{Rotation: r, Encoded: enc, Signature: sig}, nil
}

// Verify checks that the statement was signed by old, the key of its
// old peer ID, and that it names a new key.
func (s *SignedRotation) Verify(old *rsa.PublicKey) error {
	r := s.Rotation
	pid, err := identity.PeerIDFromPublicKey(old)
	if err != nil {
		return err
	}
	if pid != r.OldPeer {
		return fmt.Errorf("%w: the key is peer %s, the statement's old_peer_id is %s", ErrBadRotation, pid, r.OldPeer)
	}
	if r.OldPeer == r.NewPeer {
		return fmt.Errorf("%w: old_peer_id and new_peer_id are the same", ErrBadRotation)
	}
	if err := VerifySignature(old, s.Encoded, s.Signature); err != nil {
		return fmt.Errorf("%w: the signature does not verify with the key of peer %s", ErrBadRotation, r.OldPeer)
	}
	return nil
}

// RotationFile is the JSON form of a signed rotation statement. Like a
// receipt, its readable fields repeat the signed data and must agree
// with it.
type RotationFile struct {
	Format     string `json:"format"`
	ID         string `json:"id"`
	OldPeer    string `json:"old_peer_id"`
	NewPeer    string `json:"new_peer_id"`
	Time       string `json:"time"`
	SignedData string `json:"signed_data"` // base64 of Rotation.Encode()
	Signature  string `json:"signature"`   // base64, RSASSA-PKCS1-v1_5 SHA-256
}

var rotationShape = &jsonShape{kinds: jsonKinds(reflect.TypeFor[RotationFile]())}

// Marshal encodes the statement as a rotation file: indented JSON with
// a final newline.
func (s *SignedRotation) Marshal() []byte {
	r := s.Rotation
	b, _ := json.MarshalIndent(&RotationFile{
		Format:     RotationTag,
		ID:         string(r.ID),
		OldPeer:    r.OldPeer.String(),
		NewPeer:    r.NewPeer.String(),
		Time:       FormatTime(r.Time),
		SignedData: base64.StdEncoding.EncodeToString(s.Encoded),
		Signature:  base64.StdEncoding.EncodeToString(s.Signature),
	}, "", "  ") // cannot fail: strings only
	return append(b, '\n')
}

// ParseRotationFile decodes a rotation file with the receipts' strict
// reader (size limit; unknown, repeated or miscased members and trailing
// data refused), requires every member, and checks that the readable
// fields equal the signed ones. The signature is not checked here.
func ParseRotationFile(b []byte) (*SignedRotation, error) {
	if len(b) > MaxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrMalformedRotation, len(b), MaxReceiptSize)
	}
	var f RotationFile
	if _, err := parseStrictJSON(b, rotationShape, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedRotation, err)
	}
	for _, m := range []struct{ name, v string }{
		{"format", f.Format}, {"id", f.ID}, {"old_peer_id", f.OldPeer}, {"new_peer_id", f.NewPeer},
		{"time", f.Time}, {"signed_data", f.SignedData}, {"signature", f.Signature},
	} {
		if m.v == "" {
			return nil, fmt.Errorf("%w: member %q is missing or empty", ErrMalformedRotation, m.name)
		}
	}
	if f.Format != RotationTag {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedRotation, f.Format, RotationTag)
	}
	enc, err := decodeBase64Strict(f.SignedData)
	if err != nil {
		return nil, fmt.Errorf("%w: signed_data is not base64", ErrMalformedRotation)
	}
	sig, err := decodeBase64Strict(f.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64", ErrMalformedRotation)
	}
	r, err := ParseRotation(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: signed_data: %v", ErrMalformedRotation, err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"id", f.ID, string(r.ID)},
		{"old_peer_id", f.OldPeer, r.OldPeer.String()},
		{"new_peer_id", f.NewPeer, r.NewPeer.String()},
		{"time", f.Time, FormatTime(r.Time)},
	} {
		if c.got != c.want {
			return nil, fmt.Errorf("%w: field %s (%q) does not match the signed data (%q)", ErrMalformedRotation, c.name, c.got, c.want)
		}
	}
	return &SignedRotation{Rotation: r, Encoded: enc, Signature: sig}, nil
}

// ReadRotationFile reads and parses a rotation file; errors name it.
func ReadRotationFile(path string) (*SignedRotation, error) {
	return readStrictFile(path, "rotation statement", ParseRotationFile)
}
