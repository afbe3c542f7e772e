package protocol

import (
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
)

// Witness cosignatures (PROTOCOL.md §13): a witness that checked an
// authority's tree head (signature, time, consistency with the last head
// it cosigned) signs a record naming the head and itself. A receipt that
// carries K of them shows that K peers other than the authority saw the
// same head.

// CosignatureTag is the tag of the record a witness signs.
const CosignatureTag = "tsnode-cosignature-v1"

// Cosignature is what a witness signs about one tree head.
type Cosignature struct {
	ServerID    identity.ID
	ServerPeer  peer.ID
	Size        uint64
	Root        tlog.Hash
	HeadTime    time.Time
	WitnessID   identity.ID
	WitnessPeer peer.ID
	Time        time.Time // the witness's clock when it cosigned
}

// NewCosignature is the cosignature of head by witness w at t.
func NewCosignature(head *TreeHead, w identity.Entry, t time.Time) *Cosignature {
	return &Cosignature{ServerID: head.ServerID, ServerPeer: head.ServerPeer, Size: head.Size, Root: head.Root,
		HeadTime: head.Time, WitnessID: w.ID, WitnessPeer: w.PeerID, Time: t}
}

// Encode returns the canonical bytes that are signed.
func (c *Cosignature) Encode() []byte {
	return EncodeRecord(CosignatureTag, []byte(c.ServerID), []byte(c.ServerPeer.String()), u64(c.Size), c.Root[:],
		[]byte(FormatTime(c.HeadTime)), []byte(c.WitnessID), []byte(c.WitnessPeer.String()), []byte(FormatTime(c.Time)))
}

// ParseCosignature decodes canonical cosignature bytes.
func ParseCosignature(b []byte) (*Cosignature, error) {
	f, err := DecodeRecord(b, CosignatureTag, 8)
	if err != nil {
		return nil, err
	}
	c := &Cosignature{}
	if c.ServerID, err = identity.ParseID(string(f[0])); err != nil {
		return nil, fmt.Errorf("%w: cosignature server: %v", ErrMalformed, err)
	}
	if c.ServerPeer, err = identity.ParsePeerID(string(f[1])); err != nil {
		return nil, fmt.Errorf("%w: cosignature server peer ID: %v", ErrMalformed, err)
	}
	if c.Size, err = parseU64("tree size", f[2]); err != nil {
		return nil, err
	}
	if len(f[3]) != tlog.HashSize {
		return nil, fmt.Errorf("%w: root hash is %d bytes, want %d", ErrMalformed, len(f[3]), tlog.HashSize)
	}
	copy(c.Root[:], f[3])
	if c.HeadTime, err = ParseTime(string(f[4])); err != nil {
		return nil, err
	}
	if c.WitnessID, err = identity.ParseID(string(f[5])); err != nil {
		return nil, fmt.Errorf("%w: cosignature witness: %v", ErrMalformed, err)
	}
	if c.WitnessPeer, err = identity.ParsePeerID(string(f[6])); err != nil {
		return nil, fmt.Errorf("%w: cosignature witness peer ID: %v", ErrMalformed, err)
	}
	if c.Time, err = ParseTime(string(f[7])); err != nil {
		return nil, err
	}
	return c, nil
}

// Of reports whether c cosigns exactly head.
func (c *Cosignature) Of(head *TreeHead) bool {
	return c.ServerID == head.ServerID && c.ServerPeer == head.ServerPeer && c.Size == head.Size &&
		c.Root == head.Root && c.HeadTime.Equal(head.Time)
}

// SignedCosignature is a cosignature with the witness's signature over
// its encoding.
type SignedCosignature struct {
	Cosig     *Cosignature
	Encoded   []byte
	Signature []byte
}

// SignCosignature encodes and signs c with the witness's key.
func SignCosignature(key *rsa.PrivateKey, c *Cosignature) (*SignedCosignature, error) {
	enc := c.Encode()
	sig, err := Sign(key, enc)
	if err != nil {
		return nil, err
	}
	return &SignedCosignature{Cosig: c, Encoded: enc, Signature: sig}, nil
}

// WitnessPolicy is which witnesses' cosignatures count, how many are
// required, and how far a cosignature's time may be from its head's
// (PROTOCOL.md §13.4). Like Trust, it is explicit: a cosignature counts
// only if its witness is one the caller named, whatever else the
// directory holds. It is read-only, so safe for concurrent use.
type WitnessPolicy struct {
	witnesses map[identity.ID]identity.Entry
	k         int
	tolerance time.Duration
}

// NewWitnessPolicy requires k cosignatures from the witnesses ids (their
// keys from dir), each dated within tolerance of its head.
func NewWitnessPolicy(dir *identity.Directory, k int, tolerance time.Duration, ids ...identity.ID) (*WitnessPolicy, error) {
	p := &WitnessPolicy{witnesses: map[identity.ID]identity.Entry{}, k: k, tolerance: tolerance}
	for _, id := range ids {
		e, err := dir.Lookup(id)
		if err != nil {
			return nil, fmt.Errorf("witness %q has no public key in the identity directory", id)
		}
		p.witnesses[id] = e
	}
	switch {
	case k < 1:
		return nil, fmt.Errorf("%d cosignatures required: want at least 1", k)
	case k > len(p.witnesses):
		return nil, fmt.Errorf("%d cosignatures required from %d witnesses: want at most one per witness", k, len(p.witnesses))
	case tolerance < 0:
		return nil, fmt.Errorf("cosignature time tolerance %v: want 0 or more", tolerance)
	}
	return p, nil
}

// K is the number of cosignatures required.
func (p *WitnessPolicy) K() int { return p.k }

// Witnesses lists the witnesses whose cosignatures count, sorted.
func (p *WitnessPolicy) Witnesses() []identity.ID {
	ids := make([]identity.ID, 0, len(p.witnesses))
	for id := range p.witnesses {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// CheckCosignature checks one cosignature of head (a head whose own
// signature was checked): it names head exactly, its witness is one of
// the policy's with that witness's key, it is dated within the tolerance
// of the head's time, and the signature verifies.
func (p *WitnessPolicy) CheckCosignature(head *TreeHead, encoded, sig []byte) (*SignedCosignature, error) {
	c, err := ParseCosignature(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	w, ok := p.witnesses[c.WitnessID]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %s is not one of the witnesses required (%s)", ErrBadCosignature, c.WitnessID, joinIDs(p.Witnesses()))
	case c.WitnessPeer != w.PeerID:
		return nil, fmt.Errorf("%w: signed as %s by peer %s, but the key of %s is peer %s", ErrBadCosignature, c.WitnessID, c.WitnessPeer, c.WitnessID, w.PeerID)
	case !c.Of(head):
		return nil, fmt.Errorf("%w: %s cosigned the head of size %d at %s, not this head (size %d at %s)", ErrBadCosignature,
			c.WitnessID, c.Size, FormatTime(c.HeadTime), head.Size, FormatTime(head.Time))
	case absDuration(c.Time.Sub(head.Time)) > p.tolerance:
		return nil, fmt.Errorf("%w: %s cosigned at %s, %v from the head's time %s (tolerance %v)", ErrBadCosignature,
			c.WitnessID, FormatTime(c.Time), c.Time.Sub(head.Time), FormatTime(head.Time), p.tolerance)
	}
	if err := VerifySignature(w.PublicKey, encoded, sig); err != nil {
		return nil, fmt.Errorf("%w: the cosignature of %s does not verify with its key (%s)", ErrBadCosignature, c.WitnessID, w.PeerID)
	}
	return &SignedCosignature{Cosig: c, Encoded: encoded, Signature: sig}, nil
}

// CheckCosignatures counts the cosignatures of head that CheckCosignature
// accepts, one per witness, and fails with ErrNotWitnessed, naming each
// refusal, unless there are at least K.
func (p *WitnessPolicy) CheckCosignatures(head *TreeHead, cosigs []*SignedCosignature) ([]*SignedCosignature, error) {
	var good []*SignedCosignature
	var why []string
	seen := map[identity.ID]bool{}
	for _, c := range cosigs {
		sc, err := p.CheckCosignature(head, c.Encoded, c.Signature)
		switch {
		case err != nil:
			why = append(why, err.Error())
		case seen[sc.Cosig.WitnessID]:
			why = append(why, fmt.Sprintf("%s cosigned twice (counted once)", sc.Cosig.WitnessID))
		default:
			seen[sc.Cosig.WitnessID] = true
			good = append(good, sc)
		}
	}
	if len(good) < p.k {
		msg := fmt.Sprintf("%d valid cosignatures of the head of size %d, %d required from %s", len(good), head.Size, p.k, joinIDs(p.Witnesses()))
		if len(why) > 0 {
			msg += ": " + strings.Join(why, "; ")
		}
		return good, fmt.Errorf("%w: %s", ErrNotWitnessed, msg)
	}
	return good, nil
}

func joinIDs(ids []identity.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
