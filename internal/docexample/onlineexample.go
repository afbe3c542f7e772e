package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

// The online-key example (PROTOCOL.md §5.6): the test server's identity
// key delegates the TEST-ONLY online key testkeys.OnlineKey("server"),
// which signs the tree head of size 7 of §12.3; the v2 receipt of §12.5
// with that head signature is docs/example/hello.txt.online.receipt.
// RFC 6979 makes the online key's ECDSA signature deterministic, so this
// example is as reproducible as the others.

// onlineMade is when the example's online key is made: before the first
// head of the log example, which it then signs heads for.
var onlineMade = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// onlineBackdate is how long before it is made a key's window starts
// (node/authority: a head is dated by its batch, before it is signed).
const onlineBackdate = 5 * time.Minute

// p256SPKIPrefix is the DER SubjectPublicKeyInfo of every P-256 key in
// its canonical (uncompressed) encoding up to its point's X and Y: the
// algorithm id-ecPublicKey, the curve prime256v1, and a BIT STRING of 66
// bytes starting 00 04.
const p256SPKIPrefix = "3059301306072a8648ce3d020106082a8648ce3d03010703420004"

type onlineExample struct {
	priv    *ecdsa.PrivateKey
	key     *protocol.OnlineKey
	dsig    []byte // the identity key's signature of the delegation
	head    *protocol.SignedTreeHead
	online  []byte // the online key's signature of the head (ECDSA DER)
	receipt []byte // the v2 receipt's JSON
}

// buildOnline delegates the online key with the window the authority
// gives a key made at onlineMade with the default lifetime, signs the
// receipt's tree head with it, and checks the head, the receipt and the
// layout §5.6 gives against the code.
func buildOnline(serverKey *rsa.PrivateKey, server identity.Entry, trust *protocol.Trust, lex *logExample, docHash []byte) (*onlineExample, error) {
	lifetime := authority.DefaultOnlineKeyLifetime
	priv := testkeys.OnlineKey(serverID)
	nb, na := onlineMade.Add(-onlineBackdate), onlineMade.Add(lifetime+lifetime/4)
	var dsig []byte
	key, err := protocol.DelegateOnlineKey(priv, server, nb, na, func(b []byte) ([]byte, error) {
		var err error
		dsig, err = protocol.Sign(serverKey, b)
		return dsig, err
	})
	if err != nil {
		return nil, err
	}
	st := lex.stamps[exampleIndex]
	sig, err := key.SignHead(st.Head.Encoded, st.Head.Head.Time)
	if err != nil {
		return nil, err
	}
	if again, err := key.SignHead(st.Head.Encoded, st.Head.Head.Time); err != nil || !bytes.Equal(again, sig) {
		return nil, errors.New("the online key's signature is not reproducible")
	}
	sth, err := trust.CheckTreeHead(st.Head.Encoded, sig, nil)
	if err != nil {
		return nil, fmt.Errorf("the delegated head: %w", err)
	}
	hs, err := protocol.ParseHeadSignature(sig)
	if err != nil {
		return nil, err
	}
	ex := &onlineExample{priv: priv, key: key, dsig: dsig, head: sth, online: hs.Signature}
	if err := ex.checkLayout(); err != nil {
		return nil, err
	}
	ex.receipt = protocol.NewLogReceipt(st.Statement, st.Proof, sth).Marshal()
	r, err := protocol.ParseReceipt(ex.receipt)
	if err != nil {
		return nil, err
	}
	if _, err := r.Verify(trust, docHash); err != nil {
		return nil, fmt.Errorf("the receipt: %w", err)
	}
	// It is the v2 receipt of §12.5 but for the head's signature.
	v2 := st.Receipt()
	v2.TreeHead.Signature, v2.TreeHead.Delegation, v2.TreeHead.DelegationSignature = r.TreeHead.Signature, r.TreeHead.Delegation, r.TreeHead.DelegationSignature
	if !bytes.Equal(v2.Marshal(), ex.receipt) {
		return nil, errors.New("the online receipt differs from the v2 receipt in more than the head's signature")
	}
	return ex, nil
}

// checkLayout checks the delegation against §5.6 as a reader of the
// specification would parse it, and the head signature record around it.
func (ex *onlineExample) checkLayout() error {
	d := ex.key.Encoded()
	f, err := parseRecord(d)
	if err != nil || len(f) != 7 || string(f[0]) != protocol.OnlineKeyTag || string(f[3]) != protocol.OnlineKeyAlgorithm {
		return errors.New("the specification's delegation encoding differs from the code's")
	}
	spki, err := x509.MarshalPKIXPublicKey(&ex.priv.PublicKey)
	if err != nil {
		return err
	}
	n := len(d)
	if fmt.Sprintf("%x", spki[:27]) != p256SPKIPrefix || len(spki) != 91 || !bytes.Equal(f[4], spki) ||
		!bytes.Equal(d[n-159:n-68], spki) || !bytes.Equal(d[n-64:n-34], f[5]) || !bytes.Equal(d[n-30:], f[6]) {
		return errors.New("the delegation's layout differs from §5.6")
	}
	digest := sha256.Sum256(ex.head.Encoded)
	if !ecdsa.VerifyASN1(&ex.priv.PublicKey, digest[:], ex.online) {
		return errors.New("the online signature does not verify")
	}
	rec, err := parseRecord(ex.head.Signature)
	if err != nil || len(rec) != 4 || string(rec[0]) != protocol.HeadSignatureTag || !bytes.Equal(rec[1], d) ||
		!bytes.Equal(rec[2], ex.dsig) || !bytes.Equal(rec[3], ex.online) || len(ex.head.Signature) == 512 {
		return errors.New("the specification's head signature record differs from the code's")
	}
	return nil
}

// delegationFields lists a delegation's fields (§5.6), tag first.
func delegationFields(d *protocol.Delegation, spki []byte) []field {
	return []field{
		{"tag", []byte(protocol.OnlineKeyTag), true, ""},
		{"server_id", []byte(d.ServerID), true, ""},
		{"server_peer_id", []byte(d.ServerPeer.String()), true, ""},
		{"algorithm", []byte(protocol.OnlineKeyAlgorithm), true, ""},
		{"public_key", spki, false, "DER SubjectPublicKeyInfo: P-256, uncompressed point"},
		{"not_before", []byte(protocol.FormatTime(d.NotBefore)), true, ""},
		{"not_after", []byte(protocol.FormatTime(d.NotAfter)), true, ""},
	}
}

// derLines shows an ECDSA signature (ASN.1 DER SEQUENCE of two INTEGERs)
// part by part.
func derLines(sig []byte) (string, error) {
	if len(sig) < 8 || sig[0] != 0x30 || int(sig[1]) != len(sig)-2 || sig[2] != 0x02 {
		return "", errors.New("not a short DER SEQUENCE of INTEGERs")
	}
	rl := int(sig[3])
	if 4+rl+2 > len(sig) || sig[4+rl] != 0x02 || 4+rl+2+int(sig[5+rl]) != len(sig) {
		return "", errors.New("not a DER SEQUENCE of two INTEGERs")
	}
	sl := int(sig[5+rl])
	lead := func(n int, v []byte) string {
		if v[0] == 0 {
			return fmt.Sprintf("%d bytes: a leading 00, as its top bit is set", n)
		}
		return fmt.Sprintf("%d bytes", n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", hexLine(sig[:2], 0, fmt.Sprintf("SEQUENCE, %d bytes", len(sig)-2)))
	fmt.Fprintf(&b, "%s\n", hexLine(sig[2:4], 2, "INTEGER r, "+lead(rl, sig[4:4+rl])))
	fmt.Fprintf(&b, "%s\n", hexLines(sig[4:4+rl], 4, ""))
	fmt.Fprintf(&b, "%s\n", hexLine(sig[4+rl:6+rl], 4+rl, "INTEGER s, "+lead(sl, sig[6+rl:])))
	fmt.Fprintf(&b, "%s\n", hexLines(sig[6+rl:], 6+rl, ""))
	return b.String(), nil
}

// onlineSection is §12.8.
func onlineSection(ex *onlineExample) (string, error) {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	d := ex.key.Delegation
	enc := ex.key.Encoded()
	spki, err := x509.MarshalPKIXPublicKey(&ex.priv.PublicKey)
	if err != nil {
		return "", err
	}
	der, err := derLines(ex.online)
	if err != nil {
		return "", err
	}
	var r struct {
		TreeHead json.RawMessage `json:"tree_head"`
	}
	if err := json.Unmarshal(ex.receipt, &r); err != nil {
		return "", err
	}
	lifetime := authority.DefaultOnlineKeyLifetime

	p("### 12.8 A head signed by an online key\n\n")
	p("The examples above were made with `--online-key-lifetime 0`, so the identity key signed every head. ")
	p("With the default (§5.6), the server makes an online key and its identity key signs a delegation of it. ")
	p("Here the online key is the TEST-ONLY P-256 key whose private scalar is SHA-256 of `%s%s` (`testkeys.OnlineKey`), ", testkeys.OnlineKeySeed, serverID)
	p("so that its signatures, deterministic (RFC 6979), are reproducible; a server draws a fresh key and never writes it down. ")
	p("Its window is the one the server gives a key it makes at %s with the default lifetime (%d h): ", protocol.FormatTime(onlineMade), lifetime/time.Hour)
	p("from %d minutes before, to %d h after (a quarter of a lifetime after its successor takes over).\n\n", onlineBackdate/time.Minute, (lifetime+lifetime/4)/time.Hour)
	scalar, err := ex.priv.Bytes()
	if err != nil {
		return "", err
	}
	p("Private scalar (TEST-ONLY):\n\n```\n%x\n```\n\n", scalar)
	p("The delegation, %d bytes (§5.6):\n\n", len(enc))
	p("```\n%s```\n\n", fieldDump(delegationFields(d, spki)))
	p("The public key is the %d bytes at offset %d (len − 159): the %d bytes `%s` that start every P-256 key's SubjectPublicKeyInfo, then X and Y. ",
		len(spki), len(enc)-159, len(p256SPKIPrefix)/2, spaced(spki[:len(p256SPKIPrefix)/2]))
	p("`not_before` is at offset %d (len − 64), `not_after` at offset %d (len − 30).\n", len(enc)-64, len(enc)-30)
	p("SHA-256 of the delegation, the digest that the identity key signs:\n\n```\n%x\n```\n\n", sha256.Sum256(enc))
	p("`delegation_signature`, the identity key's signature of it (base64):\n\n```\n%s\n```\n\n", wrap(base64.StdEncoding.EncodeToString(ex.dsig), 76))
	p("The online key signs the tree head of size %d of §12.3, dated %s, within the window; the digest is the SHA-256 of the tree head shown there. ",
		ex.head.Head.Size, protocol.FormatTime(ex.head.Head.Time))
	p("Its signature, ASN.1 DER as `openssl dgst -sha256 -sign` makes it, is %d bytes:\n\n", len(ex.online))
	p("```\n%s```\n\n", der)
	p("The head signature that stamp replies, log responses and gossip carry (§5.6) is the record of the tag `%s`, ", protocol.HeadSignatureTag)
	p("the delegation, its signature and the online signature: 4 + %d + 4 + %d + 4 + %d + 4 + %d = %d bytes. ",
		len(protocol.HeadSignatureTag), len(enc), len(ex.dsig), len(ex.online), len(ex.head.Signature))
	p("A receipt writes it in three members of `tree_head` (§10.1): `docs/example/hello.txt.online.receipt` (%d bytes) is the v2 receipt of §12.5 ", len(ex.receipt))
	p("but for `tree_head`, which is\n\n")
	p("```json\n  \"tree_head\": %s\n```\n\n", r.TreeHead)
	p("`tsnode verify --keys internal/testkeys/testdata --receipt docs/example/hello.txt.online.receipt docs/example/hello.txt` accepts it; ")
	p("§11.6 checks it with openssl.\n")
	return b.String(), nil
}
