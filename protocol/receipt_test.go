package protocol

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// sampleReceipt is a valid receipt for sampleStatement, signed by "server".
func sampleReceipt(t testing.TB) (*Receipt, *Statement) {
	t.Helper()
	s := sampleStatement(t)
	return NewReceipt(s, signAs(t, "server", s.Encode())), s
}

func TestReceiptRoundTrip(t *testing.T) {
	r, s := sampleReceipt(t)
	data := r.Marshal()
	if !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("receipt does not end in a newline: %q", data[len(data)-5:])
	}
	for _, field := range []string{`"format": "tsnode-receipt-v1"`, `"hash_algorithm": "sha-256"`,
		`"document_hash": "` + hex.EncodeToString(s.DocumentHash) + `"`, `"time": "2026-01-02T03:04:05.123456789Z"`,
		`"serial": 42`, `"requester_id": "1000"`, `"server_id": "server"`} {
		if !bytes.Contains(data, []byte(field)) {
			t.Errorf("receipt JSON lacks %s:\n%s", field, data)
		}
	}
	p, err := ParseReceipt(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, r) {
		t.Fatalf("parsed receipt differs:\n got %+v\nwant %+v", p, r)
	}
	dir := testkeys.Directory(t, "server", "1000", "2000")
	got, err := p.Verify(trustOf(t, dir), s.DocumentHash)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), s.Encode()) {
		t.Fatal("Verify returned another statement")
	}
	if _, err := p.Verify(trustOf(t, dir), nil); err != nil {
		t.Fatalf("Verify without a document hash: %v", err)
	}
}

func TestReceiptVerifyRefuses(t *testing.T) {
	good, s := sampleReceipt(t)
	dir := testkeys.Directory(t, "server", "1000", "2000")
	outsider := entry(t, "outsider")

	// A directory in which "server" has the outsider's key.
	wrongKey, err := identity.NewDirectory(map[identity.ID]*rsa.PublicKey{
		"server": outsider.PublicKey,
		"1000":   &testkeys.Private(t, "1000").PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}

	edit := func(change func(r *Receipt)) *Receipt {
		c := *good
		change(&c)
		return &c
	}
	// resigned re-encodes a changed statement into a consistent receipt
	// that keeps the original signature.
	resigned := func(change func(*Statement)) *Receipt {
		m := cloneStatement(s)
		change(m)
		r := NewReceipt(m, nil)
		r.Signature = good.Signature
		return r
	}
	sig, _ := base64.StdEncoding.DecodeString(good.Signature)
	otherHash := sha256.Sum256([]byte("another document"))

	trust := trustOf(t, dir)
	for _, tc := range []struct {
		name    string
		r       *Receipt
		trust   *Trust
		hash    []byte
		want    error
		msg     string // substring of the error
		verdict string
	}{
		{"other document", good, trust, otherHash[:], ErrHashMismatch, "", VerdictHashMismatch},
		{"truncated document hash", good, trust, s.DocumentHash[:HashSize-1], ErrHashMismatch, "", VerdictHashMismatch},
		{"empty document hash", good, trust, []byte{}, ErrHashMismatch, "", VerdictHashMismatch},
		{"signature byte changed", edit(func(r *Receipt) {
			r.Signature = base64.StdEncoding.EncodeToString(flip(sig, 100))
		}), trust, s.DocumentHash, ErrBadSignature, "", VerdictBadSignature},
		{"signature truncated", edit(func(r *Receipt) {
			r.Signature = base64.StdEncoding.EncodeToString(sig[:511])
		}), trust, s.DocumentHash, ErrBadSignature, "", VerdictBadSignature},
		{"signature empty", edit(func(r *Receipt) { r.Signature = "" }), trust, s.DocumentHash, ErrMalformedReceipt, "signature", VerdictMalformedReceipt},
		{"signed_data with another time", resigned(func(m *Statement) { m.Time = m.Time.Add(-time.Hour) }),
			trust, s.DocumentHash, ErrBadSignature, "", VerdictBadSignature},
		{"signed_data with another serial", resigned(func(m *Statement) { m.Serial = 1 }),
			trust, s.DocumentHash, ErrBadSignature, "", VerdictBadSignature},
		{"signed_data with another hash", resigned(func(m *Statement) { m.DocumentHash = otherHash[:] }),
			trust, otherHash[:], ErrBadSignature, "", VerdictBadSignature},
		{"signed_data with another requester", resigned(func(m *Statement) {
			e := entry(t, "2000")
			m.RequesterID, m.RequesterPeer = e.ID, e.PeerID
		}), trust, s.DocumentHash, ErrBadSignature, "", VerdictBadSignature},
		{"only JSON time", edit(func(r *Receipt) { r.Time = FormatTime(s.Time.Add(time.Second)) }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field time ", VerdictMalformedReceipt},
		{"only JSON serial", edit(func(r *Receipt) { r.Serial++ }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field serial ", VerdictMalformedReceipt},
		{"only JSON document_hash", edit(func(r *Receipt) { r.DocumentHash = hex.EncodeToString(otherHash[:]) }),
			trust, otherHash[:], ErrMalformedReceipt, "field document_hash ", VerdictMalformedReceipt},
		{"JSON document_hash in upper case", edit(func(r *Receipt) { r.DocumentHash = strings.ToUpper(r.DocumentHash) }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field document_hash ", VerdictMalformedReceipt},
		{"only JSON nonce", edit(func(r *Receipt) { r.Nonce = hex.EncodeToString(fill(NonceSize, 1)) }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field nonce ", VerdictMalformedReceipt},
		{"only JSON requester_id", edit(func(r *Receipt) { r.RequesterID = "2000" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field requester_id ", VerdictMalformedReceipt},
		{"only JSON requester_peer_id", edit(func(r *Receipt) { r.RequesterPeer = entry(t, "2000").PeerID.String() }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field requester_peer_id ", VerdictMalformedReceipt},
		{"only JSON server_id", edit(func(r *Receipt) { r.ServerID = "2000" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field server_id ", VerdictMalformedReceipt},
		{"only JSON server_peer_id", edit(func(r *Receipt) { r.ServerPeer = outsider.PeerID.String() }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field server_peer_id ", VerdictMalformedReceipt},
		{"only JSON hash_algorithm", edit(func(r *Receipt) { r.HashAlgorithm = "sha-512" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "field hash_algorithm ", VerdictMalformedReceipt},
		{"wrong format", edit(func(r *Receipt) { r.Format = "tsnode-receipt-v0" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "format", VerdictMalformedReceipt},
		{"empty format", edit(func(r *Receipt) { r.Format = "" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "format", VerdictMalformedReceipt},
		{"signed_data not base64", edit(func(r *Receipt) { r.SignedData = "!!not base64!!" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "signed_data", VerdictMalformedReceipt},
		{"signed_data not a statement", edit(func(r *Receipt) { r.SignedData = base64.StdEncoding.EncodeToString([]byte("hello")) }),
			trust, s.DocumentHash, ErrMalformedReceipt, "signed_data", VerdictMalformedReceipt},
		{"signature not base64", edit(func(r *Receipt) { r.Signature = "%%%" }),
			trust, s.DocumentHash, ErrMalformedReceipt, "signature", VerdictMalformedReceipt},
		{"only another authority trusted", good, trustOf(t, dir, "2000"), s.DocumentHash,
			ErrUntrustedSigner, "untrusted signer: server is not a trusted authority", VerdictUntrustedSigner},
		{"server id maps to another key", good, trustOf(t, wrongKey), s.DocumentHash,
			ErrWrongServerKey, outsider.PeerID.String(), VerdictWrongServerKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Through JSON, as a verifier sees it: a member left out
			// (an empty signature is) is refused by ParseReceipt.
			var st *Statement
			p, err := ParseReceipt(tc.r.Marshal())
			if err == nil {
				st, err = p.Verify(tc.trust, tc.hash)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if st != nil {
				t.Error("Verify returned a statement with its error")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if got := VerdictFor(err); got != tc.verdict {
				t.Errorf("verdictFor = %q, want %q", got, tc.verdict)
			}
		})
	}
}

func TestParseReceiptRefuses(t *testing.T) {
	r, _ := sampleReceipt(t)
	good := r.Marshal()
	padded := append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxReceiptSize-len(good))...)
	if _, err := ParseReceipt(padded); err != nil {
		t.Fatalf("a receipt of exactly MaxReceiptSize bytes: %v", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("not json")},
		{"JSON array", []byte("[]")},
		{"unknown field", bytes.Replace(good, []byte("{"), []byte(`{"extra": 1,`), 1)},
		{"serial as a string", bytes.Replace(good, []byte(`"serial": 42`), []byte(`"serial": "42"`), 1)},
		{"negative serial", bytes.Replace(good, []byte(`"serial": 42`), []byte(`"serial": -1`), 1)},
		{"truncated", good[:len(good)/2]},
		{"trailing garbage", append(bytes.Clone(good), 'x')},
		{"trailing object", append(bytes.Clone(good), "{}"...)},
		{"second receipt", append(bytes.Clone(good), good...)},
		{"trailing brace", append(bytes.Clone(good), '}')},
		{"trailing bracket", append(bytes.Clone(good), ']')},
		{"over 64 KiB", append(padded, ' ')},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseReceipt(tc.in)
			if !errors.Is(err, ErrMalformedReceipt) {
				t.Fatalf("ParseReceipt = %v, %v; want ErrMalformedReceipt", p != nil, err)
			}
		})
	}
	t.Run("null parses but does not verify", func(t *testing.T) {
		p, err := ParseReceipt([]byte("null"))
		if err != nil {
			return // refusing it outright is fine too
		}
		if _, err := p.Verify(trustOf(t, testkeys.Directory(t, "server")), nil); !errors.Is(err, ErrMalformedReceipt) {
			t.Fatalf("Verify of an empty receipt = %v, want ErrMalformedReceipt", err)
		}
	})
}

func TestReadReceiptFile(t *testing.T) {
	r, s := sampleReceipt(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "receipt.json")
	if err := os.WriteFile(path, r.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadReceiptFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := got.Verify(trustOf(t, testkeys.Directory(t, "server")), s.DocumentHash); err != nil {
		t.Fatal(err)
	}

	missing := filepath.Join(dir, "no-such-receipt.json")
	_, err = ReadReceiptFile(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("ReadReceiptFile(missing) = %v; want ErrNotExist naming %s", err, missing)
	}

	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, append(r.Marshal(), bytes.Repeat([]byte(" "), MaxReceiptSize)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadReceiptFile(big)
	if !errors.Is(err, ErrMalformedReceipt) || !strings.Contains(err.Error(), big) {
		t.Fatalf("ReadReceiptFile(big) = %v; want ErrMalformedReceipt naming %s", err, big)
	}
}

// Flaw 8: the prototype stripped newlines before hashing, so documents
// differing only in line breaks shared a receipt.
func TestHashExactBytes(t *testing.T) {
	inputs := []string{"", "ab", "a\r\nb\n", "a\nb", "a\r\nb", "ab\n", " ab"}
	seen := map[string]string{}
	for _, in := range inputs {
		got, err := HashReader(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256([]byte(in))
		if !bytes.Equal(got, want[:]) {
			t.Errorf("HashReader(%q) = %x, want %x", in, got, want)
		}
		if prev, dup := seen[string(got)]; dup {
			t.Errorf("%q and %q hash alike", prev, in)
		}
		seen[string(got)] = in
	}

	// Large input, read in odd pieces.
	big := make([]byte, 3<<20+7)
	for i := range big {
		big[i] = byte(i * 7)
	}
	got, err := HashReader(iotest.OneByteReader(io.LimitReader(bytes.NewReader(big), 1<<16)))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(big[:1<<16])
	if !bytes.Equal(got, want[:]) {
		t.Error("HashReader over one-byte reads differs")
	}

	readErr := errors.New("disk on fire")
	if _, err := HashReader(io.MultiReader(strings.NewReader("x"), iotest.ErrReader(readErr))); !errors.Is(err, readErr) {
		t.Errorf("HashReader with a failing reader = %v, want %v", err, readErr)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "doc.txt")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(big); !bytes.Equal(got, want[:]) {
		t.Error("HashFile differs from sha256.Sum256 of the file")
	}
	missing := filepath.Join(dir, "missing.txt")
	if _, err := HashFile(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("HashFile(missing) = %v; want ErrNotExist naming %s", err, missing)
	}
}

func FuzzParseReceipt(f *testing.F) {
	r, _ := sampleReceipt(f)
	good := r.Marshal()
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(bytes.Clone(good), '}'))
	f.Add(bytes.Replace(good, []byte(`"serial": 42`), []byte(`"serial": 1e3`), 1))
	f.Add([]byte(`{"format":"tsnode-receipt-v1","signed_data":"AAAA","signature":""}`))
	f.Add([]byte("null"))
	f.Add([]byte(`{"Time": 1}`))
	f.Add([]byte{})
	addVectorSeeds(f, "ParseReceipt")
	dir := testkeys.Directory(f, "server", "1000")
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedReceipt) {
				t.Fatalf("ParseReceipt error %v is not ErrMalformedReceipt", err)
			}
			return
		}
		st, err := p.Verify(trustOf(t, dir), nil)
		if err != nil {
			for _, want := range []error{ErrMalformedReceipt, ErrBadSignature, ErrUntrustedSigner, ErrWrongServerKey, ErrBadProof, ErrRetiredKey} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Verify error %v is none of the receipt errors", err)
		}
		if st == nil {
			t.Fatal("Verify succeeded without a statement")
		}
		// Only receipts the server signed verify.
		if st.ServerID != "server" {
			t.Fatalf("verified a receipt from %q", st.ServerID)
		}
	})
}
