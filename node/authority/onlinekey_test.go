package authority

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// delegationOf returns the delegation a head was signed under, nil for
// the identity key's own signature.
func delegationOf(t *testing.T, sth *protocol.SignedTreeHead) *protocol.Delegation {
	t.Helper()
	hs, err := protocol.ParseHeadSignature(sth.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if hs.Delegation == nil {
		return nil
	}
	d, err := protocol.ParseDelegation(hs.Delegation)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Heads are signed by the online key, which the identity key signs once:
// many heads, one RSA signature, every receipt valid.
func TestOnlineKeySignsHeads(t *testing.T) {
	lg := openLog(t, t.TempDir())
	s := &hookSigner{Signer: serverSigner(t), hook: func(int) error { return nil }}
	a := newAuthority(t, lg, s)
	requester := entry(t, "1000")
	tr := trust(t)
	var first *protocol.Delegation
	for i := range 5 {
		st, err := await(t, a.Add(context.Background(), docEntry(requester, i)))
		if err != nil {
			t.Fatal(err)
		}
		checkStamp(t, lg, tr, st, docEntry(requester, i))
		d := delegationOf(t, st.Head)
		if d == nil {
			t.Fatalf("stamp %d: its head is signed by the identity key", i)
		}
		if first == nil {
			first = d
		} else if d.Fingerprint() != first.Fingerprint() {
			t.Fatalf("stamp %d: online key %s, want the first one %s", i, d.Fingerprint(), first.Fingerprint())
		}
	}
	if s.calls != 1 {
		t.Fatalf("the identity key signed %d times for 5 heads, want once (the delegation)", s.calls)
	}
	if w := first.NotAfter.Sub(first.NotBefore); w != DefaultOnlineKeyLifetime*5/4+onlineKeyBackdate {
		t.Fatalf("window %s", w)
	}
}

// A key hands over after its lifetime; heads under the old and the new
// key both verify, and each is within its key's window.
func TestOnlineKeyRotates(t *testing.T) {
	lg := openLog(t, t.TempDir())
	clock := &stepClock{t: logTime}
	a := newAuthority(t, lg, nil, WithClock(clock.now), WithOnlineKeyLifetime(time.Hour))
	requester := entry(t, "1000")
	tr := trust(t)
	var keys []string
	for i, at := range []time.Duration{0, 59 * time.Minute, 61 * time.Minute, 3 * time.Hour} {
		clock.set(logTime.Add(at))
		st, err := await(t, a.Add(context.Background(), docEntry(requester, i)))
		if err != nil {
			t.Fatal(err)
		}
		checkStamp(t, lg, tr, st, docEntry(requester, i))
		d := delegationOf(t, st.Head)
		if d == nil || !d.Covers(st.Head.Head.Time) {
			t.Fatalf("stamp %d at +%s: delegation %+v does not cover its head", i, at, d)
		}
		keys = append(keys, d.Fingerprint())
	}
	if keys[0] != keys[1] || keys[1] == keys[2] || keys[2] == keys[3] {
		t.Fatalf("online keys at +0, +59m, +61m, +3h: %v; want one, the same, then a new one each time", keys)
	}
	if d := a.online.current(); d == nil || d.Fingerprint() != keys[3] {
		t.Fatalf("current key %v, want %s", d, keys[3])
	}
}

// The head of a stored log is dated before any online key's window: the
// identity key signs it, and it verifies as before.
func TestOnlineKeyStartHeadByIdentity(t *testing.T) {
	dir := t.TempDir()
	lg := openLog(t, dir)
	clock := &stepClock{t: logTime}
	a := newAuthority(t, lg, nil, WithClock(clock.now))
	if _, err := await(t, a.Add(context.Background(), docEntry(entry(t, "1000"), 1))); err != nil {
		t.Fatal(err)
	}
	a.Close()
	clock.set(logTime.Add(time.Hour))
	a = newAuthority(t, lg, nil, WithClock(clock.now))
	h := a.Head()
	if d := delegationOf(t, h); d != nil || len(h.Signature) != 512 {
		t.Fatalf("start-up head dated %s signed under %+v, want the identity key", h.Head.Time, d)
	}
	if _, err := trust(t).CheckTreeHead(h.Encoded, h.Signature, nil); err != nil {
		t.Fatal(err)
	}
}

// An identity key that fails to sign the delegation fails the head's
// stamps, and the next head makes the key.
func TestOnlineKeyDelegationFails(t *testing.T) {
	lg := openLog(t, t.TempDir())
	s := &hookSigner{Signer: serverSigner(t), hook: func(call int) error {
		if call == 1 {
			return errSign
		}
		return nil
	}}
	a := newAuthority(t, lg, s)
	requester := entry(t, "1000")
	if _, err := await(t, a.Add(context.Background(), docEntry(requester, 0))); !errors.Is(err, errSign) {
		t.Fatalf("stamp under a failed delegation: %v, want %v", err, errSign)
	}
	st, err := await(t, a.Add(context.Background(), docEntry(requester, 1)))
	if err != nil {
		t.Fatal(err)
	}
	checkStamp(t, lg, trust(t), st, docEntry(requester, 1))
	if delegationOf(t, st.Head) == nil {
		t.Fatal("head after the failed delegation is not signed by an online key")
	}
}
