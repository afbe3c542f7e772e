package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// sampleRotation retires the test key "server" in favour of "outsider".
func sampleRotation(t testing.TB) *Rotation {
	t.Helper()
	return &Rotation{ID: "server", OldPeer: entry(t, "server").PeerID, NewPeer: entry(t, "outsider").PeerID, Time: sampleTime}
}

func signedRotation(t testing.TB) *SignedRotation {
	t.Helper()
	r := sampleRotation(t)
	enc := r.Encode()
	return &SignedRotation{Rotation: r, Encoded: enc, Signature: signAs(t, "server", enc)}
}

func TestRotationRoundTrip(t *testing.T) {
	r := sampleRotation(t)
	got, err := ParseRotation(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if *got != *r {
		t.Fatalf("round trip: got %+v, want %+v", got, r)
	}
	s, err := SignRotation(testkeys.Private(t, "server"), r)
	if err != nil {
		t.Fatal(err)
	}
	file := s.Marshal()
	if !bytes.HasSuffix(file, []byte("}\n")) || !bytes.Contains(file, []byte("\n  \"old_peer_id\": ")) {
		t.Errorf("file is not indented JSON with a final newline:\n%s", file)
	}
	back, err := ParseRotationFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if *back.Rotation != *r || !bytes.Equal(back.Encoded, s.Encoded) || !bytes.Equal(back.Signature, s.Signature) {
		t.Fatalf("file round trip differs: %+v", back)
	}
	if err := back.Verify(&testkeys.Private(t, "server").PublicKey); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(file, &m); err != nil || m["format"] != RotationTag || m["time"] != FormatTime(sampleTime) || len(m) != 7 {
		t.Errorf("file members: %v %v", m, err)
	}
}

func TestParseRotationRefuses(t *testing.T) {
	r := sampleRotation(t)
	old, nw, tm := []byte(r.OldPeer.String()), []byte(r.NewPeer.String()), []byte(FormatTime(r.Time))
	for name, b := range map[string][]byte{
		"other tag":      EncodeRecord(TreeHeadTag, []byte("server"), old, nw, tm),
		"too few fields": EncodeRecord(RotationTag, []byte("server"), old, nw),
		"too many":       EncodeRecord(RotationTag, []byte("server"), old, nw, tm, tm),
		"bad id":         EncodeRecord(RotationTag, []byte("../x"), old, nw, tm),
		"bad old peer":   EncodeRecord(RotationTag, []byte("server"), []byte("QmNope"), nw, tm),
		"bad new peer":   EncodeRecord(RotationTag, []byte("server"), old, []byte(""), tm),
		"short time":     EncodeRecord(RotationTag, []byte("server"), old, nw, []byte("2026-01-02T03:04:05Z")),
		"truncated":      r.Encode()[:20],
	} {
		if _, err := ParseRotation(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSignRotationRefuses(t *testing.T) {
	r := sampleRotation(t)
	if _, err := SignRotation(testkeys.Private(t, "outsider"), r); err == nil || !strings.Contains(err.Error(), "signing key") {
		t.Errorf("signed by a key that is not the old one: %v", err)
	}
	same := *r
	same.NewPeer = same.OldPeer
	if _, err := SignRotation(testkeys.Private(t, "server"), &same); err == nil || !strings.Contains(err.Error(), "same") {
		t.Errorf("old == new: %v", err)
	}
}

func TestRotationVerifyRefuses(t *testing.T) {
	serverPub := &testkeys.Private(t, "server").PublicKey
	good := signedRotation(t)

	// A tampered field, consistently in the file and the signed data: the
	// signature no longer verifies.
	tampered := *good
	later := *good.Rotation
	later.Time = later.Time.Add(time.Hour)
	tampered.Rotation, tampered.Encoded = &later, later.Encode()
	back, err := ParseRotationFile(tampered.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(serverPub); !errors.Is(err, ErrBadRotation) {
		t.Errorf("tampered time: %v", err)
	}
	// A bad signature.
	bad := *good
	bad.Signature = flip(good.Signature, 10)
	if err := bad.Verify(serverPub); !errors.Is(err, ErrBadRotation) || !strings.Contains(err.Error(), "signature") {
		t.Errorf("bad signature: %v", err)
	}
	// The wrong key: not the key of old_peer_id.
	if err := good.Verify(&testkeys.Private(t, "outsider").PublicKey); !errors.Is(err, ErrBadRotation) || !strings.Contains(err.Error(), "old_peer_id") {
		t.Errorf("wrong key: %v", err)
	}
	// A statement, signed by the old key, that names it as its successor.
	self := *good.Rotation
	self.NewPeer = self.OldPeer
	enc := self.Encode()
	loop := &SignedRotation{Rotation: &self, Encoded: enc, Signature: signAs(t, "server", enc)}
	if err := loop.Verify(serverPub); !errors.Is(err, ErrBadRotation) || !strings.Contains(err.Error(), "same") {
		t.Errorf("old == new: %v", err)
	}
}

func TestRotationFileRefuses(t *testing.T) {
	file := signedRotation(t).Marshal()
	members := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal(file, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	other := entry(t, "2000").PeerID.String()
	cases := map[string][]byte{
		"too large":     append(bytes.Clone(file), bytes.Repeat([]byte(" "), MaxReceiptSize)...),
		"not an object": []byte(`[]`),
		"trailing":      append(bytes.Clone(file), '}'),
		"unknown":       bytes.Replace(file, []byte(`"id":`), []byte(`"extra": 1, "id":`), 1),
		"repeated":      bytes.Replace(file, []byte(`"id": "server"`), []byte(`"id": "server", "id": "server"`), 1),
		"miscased":      bytes.Replace(file, []byte(`"id":`), []byte(`"ID":`), 1),
	}
	for _, name := range []string{"format", "id", "old_peer_id", "new_peer_id", "time", "signed_data", "signature"} {
		m := members()
		delete(m, name)
		b, _ := json.Marshal(m)
		cases["missing "+name] = b
	}
	for name, v := range map[string]string{
		"format":      "tsnode-receipt-v1",
		"id":          "1000",
		"old_peer_id": other,
		"new_peer_id": other,
		"time":        FormatTime(sampleTime.Add(time.Second)),
		"signed_data": "not base64!",
		"signature":   "not base64!",
	} {
		m := members()
		m[name] = v
		b, _ := json.Marshal(m)
		cases["differs "+name] = b
	}
	m := members()
	m["signed_data"] = base64.StdEncoding.EncodeToString([]byte("junk"))
	cases["signed_data not a record"], _ = json.Marshal(m)
	for name, b := range cases {
		_, err := ParseRotationFile(b)
		if !errors.Is(err, ErrMalformedRotation) {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if field, ok := strings.CutPrefix(name, "differs "); ok && !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error does not name the member: %v", name, err)
		}
		if field, ok := strings.CutPrefix(name, "missing "); ok && !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error does not name the member: %v", name, err)
		}
	}
	if _, err := ParseRotationFile(file); err != nil {
		t.Fatalf("the untouched file: %v", err)
	}
}

// rotationOf signs the rotation of id from the test key old to the peer
// of the test key nw at when.
func rotationOf(t testing.TB, id, old, nw identity.ID, when time.Time) *SignedRotation {
	t.Helper()
	r := &Rotation{ID: id, OldPeer: entry(t, old).PeerID, NewPeer: entry(t, nw).PeerID, Time: when}
	enc := r.Encode()
	return &SignedRotation{Rotation: r, Encoded: enc, Signature: signAs(t, old, enc)}
}
