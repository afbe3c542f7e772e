package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
)

// TestWitnessStateOfManyAuthorities: the state of a witness that follows
// more authorities than a receipt's 64 KiB would hold reads back; one
// over MaxWitnessStateSize is refused, saying its size.
func TestWitnessStateOfManyAuthorities(t *testing.T) {
	peer := entry(t, "server").PeerID
	heads := func(n int) []*SignedTreeHead {
		var hs []*SignedTreeHead
		for i := range n {
			h := &TreeHead{ServerID: identity.ID(fmt.Sprintf("authority-%05d", i)), ServerPeer: peer, Size: uint64(i + 1), Time: time.Unix(1e9, 0).UTC()}
			hs = append(hs, &SignedTreeHead{Head: h, Encoded: h.Encode(), Signature: bytes.Repeat([]byte{1}, 512)})
		}
		return hs
	}
	b := MarshalWitnessState("3000", heads(200))
	if len(b) <= MaxReceiptSize {
		t.Fatalf("200 heads take %d bytes: not more than a receipt", len(b))
	}
	id, got, err := ParseWitnessState(b)
	if err != nil || id != "3000" || len(got) != 200 {
		t.Fatalf("%d bytes: %s, %d heads, %v", len(b), id, len(got), err)
	}
	big := MarshalWitnessState("3000", heads(MaxWitnessStateSize/1000))
	if _, _, err := ParseWitnessState(big); !errors.Is(err, ErrMalformedReceipt) || !bytes.Contains([]byte(err.Error()), []byte("maximum")) {
		t.Fatalf("%d bytes: %v, want refused for its size", len(big), err)
	}
}
