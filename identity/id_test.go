package identity_test

import (
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
)

// Only the base58btc text of a peer ID is accepted (PROTOCOL.md §1.4);
// peer.Decode also takes its CIDv1 spelling.
func TestParsePeerID(t *testing.T) {
	p, err := identity.PeerIDFromPublicKey(publicKey(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	text := p.String()
	if len(text) != 46 || !strings.HasPrefix(text, "Qm") {
		t.Fatalf("peer ID text %q: want 46 characters starting Qm", text)
	}
	if got, err := identity.ParsePeerID(text); err != nil || got != p {
		t.Fatalf("ParsePeerID(%q) = %v, %v", text, got, err)
	}
	cid := peer.ToCid(p).String()
	if got, err := peer.Decode(cid); err != nil || got != p {
		t.Fatalf("peer.Decode no longer takes the CIDv1 %q (%v): this test lost its point", cid, err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"CIDv1", cid, "not the base58btc text form"},
		{"multibase-prefixed base58btc", "z" + text, "invalid peer ID"},
		{"leading space", " " + text, "invalid peer ID"},
		{"trailing newline", text + "\n", "invalid peer ID"},
		{"one character short", text[:45], "invalid peer ID"},
		{"empty", "", "invalid peer ID"},
		{"not base58", "Qm" + strings.Repeat("0", 44), "invalid peer ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := identity.ParsePeerID(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) || got != "" {
				t.Fatalf("ParsePeerID(%q) = %q, %v; want an error saying %s", tc.in, got, err, tc.want)
			}
		})
	}
}
