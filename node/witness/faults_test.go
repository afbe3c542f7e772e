package witness

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// TestFloodDropped: a peer of the directory floods the topic with
// garbage, oversized messages and heads it signed itself; the witness
// drops them all (counted), and honest cosignatures still arrive.
func TestFloodDropped(t *testing.T) {
	a := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Second)
	w1 := startWitness(t, "3000", testnet.Transports[0].Listen, t.TempDir(), a.host)
	w2 := startWitness(t, "3001", testnet.Transports[0].Listen, t.TempDir(), a.host, w1.host)

	// The flooder: a raw GossipSub router without our validators.
	fh := testnet.NewHost(t, "1000", testnet.Transports[0].Listen)
	connect(t, fh, w1.host)
	connect(t, fh, a.host)
	ps, err := pubsub.NewGossipSub(context.Background(), fh, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { d := sha256.Sum256(m.Data); return string(d[:]) }),
		pubsub.WithMaxMessageSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(protocol.Topic("server"))
	if err != nil {
		t.Fatal(err)
	}
	req := testnet.NewHost(t, "2000", "")
	connect(t, req, w2.host)
	connect(t, req, a.host) // cosignatures come through the server
	c, err := NewCollector(newGossip(t, req, testkeys.Directory(t, allIDs...)), "server", policy(t, 2, "3000", "3001"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(1500 * time.Millisecond)

	// A head signed by the requester's key in the server's name.
	fake := &protocol.TreeHead{ServerID: "server", ServerPeer: testnet.Entry(t, "server").PeerID, Size: 1, Time: time.Now()}
	forged, err := protocol.SignTreeHead(testkeys.Private(t, "1000"), fake)
	if err != nil {
		t.Fatal(err)
	}
	// One of each first: once the flooder's score falls below the
	// graylist threshold, routers ignore it before validating anything.
	for i := range 200 {
		var m []byte
		switch i % 3 {
		case 0:
			m = append(protocol.EncodeGossipHead(forged), byte(i)) // trailing data: malformed
			if i == 0 {
				m = protocol.EncodeGossipHead(forged) // a bad signature
			}
		case 1:
			m = make([]byte, protocol.MaxGossipMessageSize+1+i)
		default:
			m = []byte(strings.Repeat("x", i+1))
		}
		if err := topic.Publish(testnet.Ctx(t), m); err != nil {
			t.Fatal(err)
		}
	}
	st := stamp(t, a.auth)
	if _, _, err := c.Wait(waitCtx(t, 15*time.Second), st.Head.Head.Size); err != nil {
		t.Fatalf("honest cosignatures lost in the flood: %v", err)
	}
	// Under load pubsub may throttle validation or graylist the flooder
	// before every kind reaches the validator; TestCheckRejects checks
	// each reason.
	eventually(t, 15*time.Second, "the flood counted as rejected", func() bool {
		r, _, _ := w1.m.get()
		return r["malformed"]+r["size"]+r["signature"] > 0
	})
	r, cosigned, _ := w1.m.get()
	if cosigned == 0 {
		t.Fatal("witness 3000 cosigned nothing")
	}
	t.Logf("rejected by 3000: %v", r)
	// Nothing of the flood reached the second witness through the first:
	// what a validator rejects is not forwarded.
	if r2, _, _ := w2.m.get(); r2["size"]+r2["malformed"]+r2["signature"] >= r["size"]+r["malformed"]+r["signature"] {
		t.Errorf("3001 rejected %v, as much as the flooder's direct peer 3000 (%v): the flood was forwarded", r2, r)
	}
}

// TestInconsistentSizesProven: a head of another view, smaller than the
// log the witness's server holds, is proven not to be its prefix with
// the server's consistency proof, whether its size is a power of two
// (the prefix root is fetched separately) or not.
func TestInconsistentSizesProven(t *testing.T) {
	a := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Minute)
	other := startAuthority(t, testnet.Transports[0].Listen, 100*time.Millisecond, time.Minute)
	w := startWitness(t, "3000", testnet.Transports[0].Listen, t.TempDir(), a.host)
	// The other view stamps first: its smaller heads are dated before
	// the larger ones of this view, so only the proof tells them apart
	// (a smaller head dated later would prove a rollback by itself).
	var foreign []*protocol.SignedTreeHead
	for range 3 {
		foreign = append(foreign, stamp(t, other.auth).Head)
	}
	for range 6 {
		stamp(t, a.auth)
	}
	c := w.w.follows["server"].logs[0]
	latest, _, err := c.Fetch(testnet.Ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	trust := testnet.Trust(t, testkeys.Directory(t, allIDs...))
	for _, h := range foreign {
		t.Run(string(rune('0'+h.Head.Size)), func(t *testing.T) {
			e, err := w.w.compare(testnet.Ctx(t), c, h, latest)
			if h.Head.Size == 1 { // no prefix root to fetch: no evidence, but no cosignature either
				if e != nil || !errors.Is(err, protocol.ErrInconsistent) {
					t.Fatalf("size 1: evidence %v, err %v; want no evidence and an inconsistency", e, err)
				}
				return
			}
			if err != nil || e == nil {
				t.Fatalf("size %d: evidence %v, err %v", h.Head.Size, e, err)
			}
			if kind, err := e.Verify(trust); err != nil || kind != protocol.EquivocationInconsistent {
				t.Fatalf("size %d: %q, %v; want %s", h.Head.Size, kind, err, protocol.EquivocationInconsistent)
			}
		})
	}
	// The witness's own heads are consistent: no evidence, no error.
	own, _, err := c.Fetch(testnet.Ctx(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := w.w.compare(testnet.Ctx(t), c, own, latest); e != nil || err != nil {
		t.Fatalf("own head: evidence %v, err %v", e, err)
	}
}

// TestCheckRejects: the topic validator refuses each kind of bad message
// with its reason, and accepts the honest ones.
func TestCheckRejects(t *testing.T) {
	dir := testkeys.Directory(t, allIDs...)
	g := newGossip(t, testnet.NewHost(t, "2000", ""), dir)
	head := func(key identity.ID, server identity.ID, size uint64) *protocol.SignedTreeHead {
		h := &protocol.TreeHead{ServerID: server, ServerPeer: testnet.Entry(t, "server").PeerID, Size: size, Time: time.Now().UTC()}
		sth, err := protocol.SignTreeHead(testkeys.Private(t, key), h)
		if err != nil {
			t.Fatal(err)
		}
		return sth
	}
	good := head("server", "server", 3)
	cosig := func(signer, as identity.ID) []byte {
		c := protocol.NewCosignature(good.Head, testnet.Entry(t, as), time.Now())
		sc, err := protocol.SignCosignature(testkeys.Private(t, signer), c)
		if err != nil {
			t.Fatal(err)
		}
		return protocol.EncodeGossipCosigned(good, sc)
	}
	fork := head("server", "server", 3)
	fork.Head.Root[0] ^= 1
	fork, _ = protocol.SignTreeHead(testkeys.Private(t, "server"), fork.Head)
	evidence := protocol.EncodeGossipEvidence(protocol.FindEquivocation(good, fork, nil))
	same := protocol.EncodeGossipEvidence(&protocol.Evidence{First: good, Second: good})
	member, outsider := testnet.Entry(t, "3000").PeerID, testnet.Entry(t, "outsider").PeerID
	for _, c := range []struct {
		name   string
		from   peer.ID
		data   []byte
		reason string // "" = accepted
	}{
		{"head", member, protocol.EncodeGossipHead(good), ""},
		{"cosigned head", member, cosig("3000", "3000"), ""},
		{"evidence", member, evidence, ""},
		{"oversized", member, make([]byte, protocol.MaxGossipMessageSize+1), "size"},
		{"from a stranger", outsider, protocol.EncodeGossipHead(good), "stranger"},
		{"garbage", member, []byte("not a record"), "malformed"},
		{"head signed by a requester", member, protocol.EncodeGossipHead(head("1000", "server", 3)), "signature"},
		{"head of another authority", member, protocol.EncodeGossipHead(head("1000", "1000", 3)), "topic"},
		{"cosignature by another key", member, cosig("3001", "3000"), "signature"},
		{"cosignature by a stranger", member, cosig("outsider", "outsider"), "stranger"},
		{"evidence of nothing", member, same, "signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Each kind of message on its topic: cosigned heads on the
			// cosignatures' topic, the others on the heads' one; never
			// the other way round.
			mine := protocol.IsCosigned(c.data)
			msg := func() *pubsub.Message {
				return &pubsub.Message{Message: &pb.Message{Data: c.data}, ReceivedFrom: c.from}
			}
			if c.reason == "" {
				if r := g.validator("server", mine)(context.Background(), c.from, msg()); r != pubsub.ValidationAccept {
					t.Fatalf("refused on its own topic: %v", r)
				}
				if r := g.validator("server", !mine)(context.Background(), c.from, msg()); r != pubsub.ValidationReject {
					t.Fatalf("accepted on the other topic: %v", r)
				}
			}
			_, err := g.Check("server", c.from, c.data)
			var r *errRejected
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.reason != "" && (!errors.As(err, &r) || r.reason != c.reason):
				t.Fatalf("got %v, want a rejection for %q", err, c.reason)
			}
		})
	}
}
