package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// verifyJSON reads a receipt as tsnode verify does: parse, then verify.
func verifyJSON(t testing.TB, r *Receipt, f *logFixture) error {
	t.Helper()
	p, err := ParseReceipt(r.Marshal())
	if err != nil {
		return err
	}
	_, err = p.Verify(trustOf(t, f.dir), nil)
	return err
}

// Base64 with a line break is refused (§1.1), though Go's decoder skips
// line breaks: each case would otherwise verify.
func TestReceiptRefusesBase64LineBreaks(t *testing.T) {
	f := newLogFixture(t)
	v1, _ := sampleReceipt(t)
	v2 := f.stamps[3].Receipt()
	for _, r := range []*Receipt{v1, v2} {
		if err := verifyJSON(t, r, f); err != nil {
			t.Fatalf("unaltered %s receipt: %v", r.Format, err)
		}
	}
	// breakAt inserts br after the first 8 characters of a base64 value.
	breakAt := func(s *string, br string) { *s = (*s)[:8] + br + (*s)[8:] }
	for _, tc := range []struct {
		member string
		r      *Receipt
		field  func(*Receipt) *string
	}{
		{"signed_data", v1, func(r *Receipt) *string { return &r.SignedData }},
		{"signature", v1, func(r *Receipt) *string { return &r.Signature }},
		{"leaf", v2, func(r *Receipt) *string { return &r.Leaf }},
		{"tree_head.signed_data", v2, func(r *Receipt) *string { return &r.TreeHead.SignedData }},
		{"tree_head.signature", v2, func(r *Receipt) *string { return &r.TreeHead.Signature }},
	} {
		for _, br := range []string{"\n", "\r\n", "\r"} {
			t.Run(tc.member+" "+strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(br), func(t *testing.T) {
				r := cloneReceipt(tc.r)
				breakAt(tc.field(r), br)
				err := verifyJSON(t, r, f)
				if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), tc.member+" is not base64: line break") {
					t.Fatalf("got %v, want ErrMalformedReceipt naming %s and the line break", err, tc.member)
				}
			})
		}
	}
}

// Hashes of an inclusion proof or a consistency proof in uppercase hex
// are refused (§1.1); lowercase they verify.
func TestProofsRefuseUppercaseHex(t *testing.T) {
	f := newLogFixture(t)
	good := f.stamps[3].Receipt()
	if len(good.InclusionProof) < 2 {
		t.Fatalf("stamp 3 has %d proof hashes, want 2 or more", len(good.InclusionProof))
	}
	for i := range good.InclusionProof {
		r := cloneReceipt(good)
		if up := strings.ToUpper(r.InclusionProof[i]); up != r.InclusionProof[i] {
			r.InclusionProof[i] = up
		} else {
			t.Fatalf("proof hash %d has no letter", i)
		}
		err := verifyJSON(t, r, f)
		if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), "inclusion_proof[") || !strings.Contains(err.Error(), "lowercase hex") {
			t.Errorf("inclusion_proof[%d] in uppercase: %v, want ErrMalformedReceipt naming it", i, err)
		}
	}

	logs := newForkedLogs(t)
	c := NewConsistency(logs.a3, logs.a5, treeProof(t, logs.a, 3, 5))
	dir := f.dir
	if err := roundTrip(t, c).Verify(trustOf(t, dir)); err != nil {
		t.Fatalf("unaltered consistency file: %v", err)
	}
	for i := range c.Proof {
		bad := roundTrip(t, c)
		bad.Proof[i] = strings.ToUpper(bad.Proof[i])
		b, _ := json.Marshal(bad)
		p, err := ParseConsistency(b)
		if err == nil {
			err = p.Verify(trustOf(t, dir))
		}
		if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), "proof[") || strings.Contains(err.Error(), "inclusion_proof") {
			t.Errorf("proof[%d] in uppercase: %v, want ErrMalformedReceipt naming proof[%d]", i, err, i)
		}
	}
}

func TestDecodeHexHash(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	if h, err := decodeHexHash(good); err != nil || h[0] != 0x01 || h[31] != 0xef {
		t.Fatalf("decodeHexHash(%q) = %x, %v", good, h, err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"uppercase", strings.ToUpper(good), "offset 10"},
		{"one uppercase digit", good[:63] + "F", "offset 63"},
		{"short", good[:62], "62 hex digits"},
		{"long", good + "00", "66 hex digits"},
		{"empty", "", "0 hex digits"},
		{"not hex", "g" + good[1:], "offset 0"},
		{"space", " " + good[1:], "offset 0"},
	} {
		if _, err := decodeHexHash(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %s", tc.name, err, tc.want)
		}
	}
}

// A peer ID in its CIDv1 spelling is refused in a statement, a leaf and a
// tree head (§1.4), with the field named, by both statement parsers.
func TestCIDv1PeerIDRefused(t *testing.T) {
	s := sampleStatement(t)
	req, srv := s.RequesterPeer.String(), s.ServerPeer.String()
	reqCID, srvCID := peer.ToCid(s.RequesterPeer).String(), peer.ToCid(s.ServerPeer).String()
	if !strings.HasPrefix(reqCID, "bafz") {
		t.Fatalf("CIDv1 spelling %q does not start bafz", reqCID)
	}
	known := NewKnownParties(entry(t, "1000"), entry(t, "server"))
	for _, tc := range []struct {
		name, want string
		b          []byte
		parse      func([]byte) (*Statement, error)
	}{
		{"statement, requester", "requester peer ID", s.EncodeWith(StatementTag, reqCID, srv), ParseStatement},
		{"statement, server", "server peer ID", s.EncodeWith(StatementTag, req, srvCID), ParseStatement},
		{"leaf, requester", "requester peer ID", s.EncodeWith(LeafTag, reqCID, srv), ParseLeaf},
		{"leaf, server", "server peer ID", s.EncodeWith(LeafTag, req, srvCID), ParseLeaf},
		{"leaf, known parties", "server peer ID", s.EncodeWith(LeafTag, req, srvCID),
			func(b []byte) (*Statement, error) { return parseStatement(b, LeafTag, known) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.parse(tc.b)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "base58btc") {
				t.Fatalf("got %v, want ErrMalformed naming the %s", err, tc.want)
			}
		})
	}
	if _, err := ParseLeaf(s.EncodeWith(LeafTag, req, srv)); err != nil {
		t.Fatalf("the same leaf with base58btc peer IDs: %v", err)
	}

	h := &TreeHead{ServerID: s.ServerID, ServerPeer: s.ServerPeer, Size: 3, Time: sampleTime}
	headWith := func(peerText string) []byte {
		return EncodeRecord(TreeHeadTag, []byte(h.ServerID), []byte(peerText), u64(h.Size), h.Root[:], []byte(FormatTime(h.Time)))
	}
	if _, err := ParseTreeHead(headWith(srv)); err != nil {
		t.Fatalf("tree head with the base58btc peer ID: %v", err)
	}
	if _, err := ParseTreeHead(headWith(srvCID)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "tree head server peer ID") {
		t.Fatalf("tree head with a CIDv1 peer ID: %v, want ErrMalformed naming the tree head server peer ID", err)
	}
}
