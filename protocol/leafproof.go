package protocol

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Leaf kinds, as CheckLeaf names them.
const (
	LeafKindStamp   = "stamp"   // tsnode-stamp-leaf-v1 (§4.3)
	LeafKindRFC3161 = "rfc3161" // tsnode-rfc3161-leaf-v1 (§14)
)

// LeafInfo is what a leaf of either kind says.
type LeafInfo struct {
	Kind   string
	Serial uint64
	Time   time.Time
	Hash   []byte // the document hash or the message imprint
}

// CheckLeaf checks that leaf is the leaf at serial of the tree of head (a
// head whose signature was checked): a stamp or RFC 3161 leaf of the
// head's server, at that serial, not dated after the head, and proof
// leads from it to the head's root (tsnode log --serial).
func CheckLeaf(leaf []byte, serial uint64, head *TreeHead, proof tlog.RecordProof) (*LeafInfo, error) {
	var info LeafInfo
	var server string
	var peerID string
	switch {
	case recordTag(leaf) == LeafTag:
		st, err := ParseLeaf(leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d: %v", ErrBadProof, serial, err)
		}
		info = LeafInfo{Kind: LeafKindStamp, Serial: st.Serial, Time: st.Time, Hash: st.DocumentHash}
		server, peerID = string(st.ServerID), st.ServerPeer.String()
	default:
		l, err := ParseTSALeaf(leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d is neither a stamp nor an RFC 3161 leaf: %v", ErrBadProof, serial, err)
		}
		info = LeafInfo{Kind: LeafKindRFC3161, Serial: l.Serial, Time: l.Time, Hash: l.Imprint}
		server, peerID = string(l.ServerID), l.ServerPeer.String()
	}
	switch {
	case server != string(head.ServerID) || peerID != head.ServerPeer.String():
		return nil, fmt.Errorf("%w: leaf %d is of server %s (%s), the head of %s (%s)", ErrWrongServerKey, serial, server, peerID, head.ServerID, head.ServerPeer)
	case info.Serial != serial:
		return nil, fmt.Errorf("%w: the leaf at %d says serial %d", ErrBadProof, serial, info.Serial)
	case info.Time.After(head.Time):
		return nil, fmt.Errorf("%w: leaf %d is dated %s, after its tree head's %s", ErrBadProof, serial, FormatTime(info.Time), FormatTime(head.Time))
	}
	if err := VerifyInclusion(leaf, serial, head.Size, head.Root, proof); err != nil {
		return nil, err
	}
	return &info, nil
}
