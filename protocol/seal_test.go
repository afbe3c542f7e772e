package protocol

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/tsnode/tsnode/internal/testkeys"
)

const testContext = "tsnode/test/v1"

func TestSealOpenRoundTrip(t *testing.T) {
	priv := testkeys.Private(t, "1000")
	for _, tc := range []struct {
		name string
		pt   []byte
	}{
		{"empty", nil},
		{"short", []byte("hello")},
		{"OAEP limit", fill(446, 1)},
		{"over the OAEP limit", fill(447, 2)},
		{"100 KiB", fill(100<<10, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := Seal(&priv.PublicKey, testContext, tc.pt)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != SealOverhead+len(tc.pt) {
				t.Errorf("sealed %d bytes into %d, want %d", len(tc.pt), len(sealed), SealOverhead+len(tc.pt))
			}
			if sealed[0] != sealVersion {
				t.Errorf("version byte %d, want %d", sealed[0], sealVersion)
			}
			if len(tc.pt) >= 16 && bytes.Contains(sealed, tc.pt[:16]) {
				t.Error("the plaintext appears in the sealed box")
			}
			got, err := Open(priv, testContext, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Fatalf("opened %d bytes, want %d", len(got), len(tc.pt))
			}
		})
	}
}

// Flaw 2: plain RSA-OAEP under a 4096-bit key carries at most 446 bytes,
// so the prototype could not encrypt a reply holding a 512-byte signature.
func TestSealCarriesSignedReply(t *testing.T) {
	s := sampleStatement(t)
	enc := s.Encode()
	sig := signAs(t, "server", enc)
	if len(sig) != 512 {
		t.Fatalf("signature is %d bytes, want 512", len(sig))
	}
	reply := EncodeRecord(StampReplyTag, enc, sig)
	priv := testkeys.Private(t, "1000")
	if _, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, reply, nil); err == nil {
		t.Fatalf("plain OAEP sealed a %d-byte reply; the regression test no longer shows the limit", len(reply))
	}
	sealed, err := Seal(&priv.PublicKey, StampReplyTag, reply)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(priv, StampReplyTag, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, reply) {
		t.Fatal("reply changed in sealing")
	}
}

func TestSealIsRandomized(t *testing.T) {
	pub := &testkeys.Private(t, "1000").PublicKey
	a, err := Seal(pub, testContext, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Seal(pub, testContext, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[1:1+wrappedKeyLen], b[1:1+wrappedKeyLen]) || bytes.Equal(a[1+wrappedKeyLen:], b[1+wrappedKeyLen:]) {
		t.Fatal("two seals of one plaintext share a wrapped key or ciphertext")
	}
}

func TestOpenRefuses(t *testing.T) {
	priv := testkeys.Private(t, "1000")
	pt := []byte("a message long enough to have a ciphertext")
	sealed, err := Seal(&priv.PublicKey, testContext, pt)
	if err != nil {
		t.Fatal(err)
	}
	toOther, err := Seal(&testkeys.Private(t, "2000").PublicKey, testContext, pt)
	if err != nil {
		t.Fatal(err)
	}
	ctStart := 1 + wrappedKeyLen + gcmNonceLen
	tagStart := len(sealed) - 16
	for _, tc := range []struct {
		name    string
		context string
		box     []byte
	}{
		{"sealed to another key", testContext, toOther},
		{"another context", "tsnode/test/v2", sealed},
		{"empty context", "", sealed},
		{"flipped version", testContext, flip(sealed, 0)},
		{"flipped wrapped key, first byte", testContext, flip(sealed, 1)},
		{"flipped wrapped key, middle", testContext, flip(sealed, 1+wrappedKeyLen/2)},
		{"flipped wrapped key, last byte", testContext, flip(sealed, wrappedKeyLen)},
		{"flipped nonce, first byte", testContext, flip(sealed, 1+wrappedKeyLen)},
		{"flipped nonce, last byte", testContext, flip(sealed, ctStart-1)},
		{"flipped ciphertext, first byte", testContext, flip(sealed, ctStart)},
		{"flipped ciphertext, last byte", testContext, flip(sealed, tagStart-1)},
		{"flipped tag, first byte", testContext, flip(sealed, tagStart)},
		{"flipped tag, last byte", testContext, flip(sealed, len(sealed)-1)},
		{"one byte short", testContext, sealed[:len(sealed)-1]},
		{"one byte more", testContext, append(bytes.Clone(sealed), 0)},
		{"shorter than the overhead", testContext, sealed[:SealOverhead-1]},
		{"only the version", testContext, sealed[:1]},
		{"empty", testContext, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(priv, tc.context, tc.box)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open = %q, %v; want ErrOpen", got, err)
			}
		})
	}
}

func TestSealSmallKey(t *testing.T) {
	block, _ := pem.Decode(testkeys.File(t, "small-2048.pub.pem"))
	if block == nil {
		t.Fatal("no PEM block in small-2048.pub.pem")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("small-2048.pub.pem holds %T", k)
	}
	if sealed, err := Seal(pub, testContext, []byte("x")); err == nil {
		t.Fatalf("sealed %d bytes to a 2048-bit key, want an error", len(sealed))
	}
}
