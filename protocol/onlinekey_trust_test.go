package protocol

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

// A delegation counts by the trust rule at the head's time (§10.2): a
// retired key's delegation signs heads dated before its rotation only,
// and a delegation by one key does not pass for another's.
func TestDelegatedHeadRetiredKey(t *testing.T) {
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rot := newRotated(t, at) // server: the test key "server" until at, then "outsider"'s
	nb, na := at.Add(-2*time.Hour), at.Add(2*time.Hour)
	priv := onlinePriv("server")
	byOld := delegateAs(t, priv, rot.old, "server", nb, na)
	byNew := delegateAs(t, priv, rot.cur, "outsider", nb, na)
	// A delegation naming one key of server, signed by the other.
	oldNamedNewSigned := delegateAs(t, priv, rot.old, "outsider", nb, na)
	newNamedOldSigned := delegateAs(t, priv, rot.cur, "server", nb, na)
	head := func(by *OnlineKey, when time.Time) ([]byte, []byte) {
		h := onlineHead(t, when)
		h.ServerPeer = by.Delegation.ServerPeer
		enc := h.Encode()
		sig, err := by.SignHead(enc, when)
		if err != nil {
			t.Fatal(err)
		}
		return enc, sig
	}
	for _, c := range []struct {
		name string
		by   *OnlineKey
		when time.Time
		want error
	}{
		{"retired key, head before the rotation", byOld, at.Add(-time.Nanosecond), nil},
		{"retired key, head at the rotation", byOld, at, ErrRetiredKey},
		{"retired key, head after the rotation", byOld, at.Add(time.Hour), ErrRetiredKey},
		{"current key, head after the rotation", byNew, at.Add(time.Hour), nil},
		{"current key, head before the rotation", byNew, at.Add(-time.Hour), nil},
		{"retired key named, current key signed", oldNamedNewSigned, at.Add(-time.Hour), ErrBadSignature},
		{"current key named, retired key signed", newNamedOldSigned, at.Add(time.Hour), ErrBadSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc, sig := head(c.by, c.when)
			err := checkBoth(t, rot.trust, enc, sig)
			if c.want == nil && err != nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want == ErrBadSignature && !strings.Contains(err.Error(), "its delegation, for the tree head of size 7, does not verify") {
				t.Fatalf("error %q does not say that the delegation does not verify", err)
			}
		})
	}
}

// The cache checks a delegated head once, and each delegation's RSA
// signature once, whatever heads it signs; it lets nothing through that
// a check without it refuses.
func TestHeadCacheDelegated(t *testing.T) {
	trust := vectorTrust(t)
	k := delegateAs(t, onlinePriv("server"), entry(t, "server"), "server", onlineNB, onlineNA)
	sign := func(at time.Time) ([]byte, []byte) {
		enc := onlineHead(t, at).Encode()
		sig := headSig(t, k.Encoded(), "server", onlinePriv("server"), enc)
		return enc, sig
	}
	cache := NewHeadCache(16)
	verified := func(want int64, what string) {
		t.Helper()
		if got := cache.verified.Load(); got != want {
			t.Fatalf("after %s: %d verifications, want %d", what, got, want)
		}
	}
	enc1, sig1 := sign(sampleTime)
	if _, err := trust.CheckTreeHead(enc1, sig1, cache); err != nil {
		t.Fatal(err)
	}
	verified(2, "the first head (the head, and its delegation's RSA signature)")
	if _, err := trust.CheckTreeHead(enc1, sig1, cache); err != nil {
		t.Fatal(err)
	}
	verified(2, "the first head again")
	enc2, sig2 := sign(sampleTime.Add(time.Second))
	if _, err := trust.CheckTreeHead(enc2, sig2, cache); err != nil {
		t.Fatal(err)
	}
	verified(3, "a second head under the same delegation (its ECDSA signature only)")

	// Under the cached delegation: a head outside the window, and a bad
	// online signature, are still refused, and not cached.
	enc3, sig3 := sign(onlineNA.Add(time.Nanosecond))
	hs2, err := ParseHeadSignature(sig2)
	if err != nil {
		t.Fatal(err)
	}
	badOnline := (&HeadSignature{Delegation: hs2.Delegation, DelegationSignature: hs2.DelegationSignature, Signature: flip(hs2.Signature, 20)}).Encode()
	for range 2 {
		if _, err := trust.CheckTreeHead(enc3, sig3, cache); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "outside its window") {
			t.Fatalf("head after the window, delegation cached: %v", err)
		}
		if _, err := trust.CheckTreeHead(enc2, badOnline, cache); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("bad online signature, delegation cached: %v", err)
		}
	}
	// The head verified with the identity key's own signature is another
	// cache entry: a delegated head's entry does not stand for it.
	if _, err := trust.CheckTreeHead(enc1, signAs(t, "outsider", enc1), cache); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("the cached head with the outsider's RSA signature: %v", err)
	}
}

// The layout §5.6 gives: seven fields; counted from the end, not_after
// is the last 30 bytes, not_before the 30 at len − 64, the public key the
// 91 at len − 159; and the delegation round-trips.
func TestDelegationLayout(t *testing.T) {
	k := delegateAs(t, onlinePriv("server"), entry(t, "server"), "server", onlineNB, onlineNA)
	b := k.Encoded()
	spki, err := x509.MarshalPKIXPublicKey(&onlinePriv("server").PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	n := len(b)
	if len(spki) != 91 || !bytes.Equal(b[n-159:n-68], spki) ||
		string(b[n-64:n-34]) != FormatTime(onlineNB) || string(b[n-30:]) != FormatTime(onlineNA) {
		t.Fatalf("delegation %x does not have the layout of §5.6", b)
	}
	f, err := DecodeRecord(b, OnlineKeyTag, 6)
	if err != nil || string(f[0]) != "server" || string(f[1]) != entry(t, "server").PeerID.String() || string(f[2]) != OnlineKeyAlgorithm {
		t.Fatalf("fields %q: %v", f, err)
	}
	d, err := ParseDelegation(b)
	if err != nil {
		t.Fatal(err)
	}
	if re, err := d.Encode(); err != nil || !bytes.Equal(re, b) {
		t.Fatalf("re-encodes to %x (%v)", re, err)
	}
	if !d.Key.Equal(&onlinePriv("server").PublicKey) || !d.NotBefore.Equal(onlineNB) || !d.NotAfter.Equal(onlineNA) {
		t.Fatalf("parsed %+v", d)
	}
	// The signatures are deterministic (RFC 6979), and the record that
	// carries them is never 512 bytes (§5.6).
	enc := onlineHead(t, sampleTime).Encode()
	s1, err1 := k.SignHead(enc, sampleTime)
	s2, err2 := k.SignHead(enc, sampleTime)
	if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) || len(s1) <= 512 {
		t.Fatalf("two signatures of one head: %x, %x (%v, %v)", s1, s2, err1, err2)
	}
}

// What would make a delegation or a head signature a verifier refuses is
// refused when it is made.
func TestDelegateOnlineKeyRefuses(t *testing.T) {
	srv := entry(t, "server")
	sign := func(b []byte) ([]byte, error) { return signAs(t, "server", b), nil }
	p384, err := ecdsa.GenerateKey(elliptic.P384(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		priv   *ecdsa.PrivateKey
		nb, na time.Time
		sign   func([]byte) ([]byte, error)
		msg    string
	}{
		{"P-384 key", p384, onlineNB, onlineNA, sign, "not a P-256 key"},
		{"window of 31 days and 1 ns", onlinePriv("server"), onlineNB, onlineNB.Add(MaxDelegationWindow + 1), sign, "is not within 744h0m0s"},
		{"window that ends before it starts", onlinePriv("server"), onlineNB, onlineNB.Add(-1), sign, "is not within"},
		{"signed by another key", onlinePriv("server"), onlineNB, onlineNA, func(b []byte) ([]byte, error) { return signAs(t, "outsider", b), nil },
			"the delegation's signature does not verify with the key of server"},
		{"identity key fails", onlinePriv("server"), onlineNB, onlineNA, func([]byte) ([]byte, error) { return nil, errors.New("token removed") },
			"the identity key's signature of the delegation: token removed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if k, err := DelegateOnlineKey(c.priv, srv, c.nb, c.na, c.sign); err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, %v; want an error saying %q", k, err, c.msg)
			}
		})
	}
	k := delegateAs(t, onlinePriv("server"), srv, "server", onlineNB, onlineNA)
	for _, at := range []time.Time{onlineNB.Add(-1), onlineNA.Add(1)} {
		if sig, err := k.SignHead(onlineHead(t, at).Encode(), at); err == nil || !strings.Contains(err.Error(), "is outside its window") {
			t.Fatalf("head dated %s: signed %x (%v)", FormatTime(at), sig, err)
		}
	}
}
