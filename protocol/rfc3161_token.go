package protocol

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDs of the token (RFC 3161, RFC 5816).
var (
	oidTSTInfo              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
)

// TSASigner makes the tokens of one authority (§14.3): the leaf
// certificate and its key, and the certificates above it, root last.
type TSASigner struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	Chain  []*x509.Certificate // the leaf's issuers, root last (at least the root)
	Policy string              // dotted OID of TSTInfo.policy
	// Accuracy is TSTInfo.accuracy (0: none): the clock tolerance.
	Accuracy time.Duration
}

// TSTInfo is the DER TSTInfo of the token of leaf l: what is signed.
func (s *TSASigner) TSTInfo(l *TSALeaf) ([]byte, error) {
	policy, err := TSAPolicyDER(s.Policy)
	if err != nil {
		return nil, err
	}
	hashOID := tsaHashOID(l.Hash)
	if hashOID == nil {
		return nil, fmt.Errorf("rfc3161 token: hash %v is not SHA-256, SHA-384 or SHA-512", l.Hash)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(policy) })
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // messageImprint
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(hashOID)
				b.AddASN1NULL()
			})
			b.AddASN1OctetString(l.Imprint)
		})
		b.AddASN1Uint64(l.Serial)
		b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(GeneralizedTime(l.Time))) })
		if s.Accuracy > 0 {
			addAccuracy(b, s.Accuracy)
		}
		if len(l.Nonce) > 0 {
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(l.Nonce) })
		}
		// tsa [0] EXPLICIT GeneralName: directoryName [4] EXPLICIT Name.
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(4).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(s.Cert.RawSubject) })
		})
	})
	return b.Bytes()
}

// GeneralizedTime is t in UTC as DER writes a GeneralizedTime: the
// fraction of a second without trailing zeros, no dot when whole.
func GeneralizedTime(t time.Time) string { return t.UTC().Format("20060102150405.999999999Z") }

// addAccuracy writes Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL,
// millis [0] INTEGER (1..999) OPTIONAL, micros [1] INTEGER (1..999) OPTIONAL },
// rounded up to the microsecond.
func addAccuracy(b *cryptobyte.Builder, d time.Duration) {
	us := int64((d + time.Microsecond - 1) / time.Microsecond)
	sec, ms, micro := us/1e6, us/1e3%1e3, us%1e3
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if sec > 0 {
			b.AddASN1Int64(sec)
		}
		if ms > 0 {
			b.AddASN1Int64WithTag(ms, cbasn1.Tag(0).ContextSpecific())
		}
		if micro > 0 {
			b.AddASN1Int64WithTag(micro, cbasn1.Tag(1).ContextSpecific())
		}
	})
}

// signingCertificateV2 is the DER SigningCertificateV2 (RFC 5035 §3) of
// cert: one ESSCertIDv2 with SHA-256 (the default, so left out), the
// certificate's hash, and its issuer and serial.
func signingCertificateV2(cert *x509.Certificate) ([]byte, error) {
	h := sha256.Sum256(cert.Raw)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // certs
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ESSCertIDv2
				b.AddASN1OctetString(h[:])
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // IssuerSerial
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // GeneralNames
						b.AddASN1(cbasn1.Tag(4).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(cert.RawIssuer) })
					})
					b.AddASN1BigInt(cert.SerialNumber)
				})
			})
		})
	})
	return b.Bytes()
}

// Token signs the TSTInfo of l: a CMS SignedData (the TimeStampToken) with
// SHA-256, the signing-certificate-v2 attribute, and the certificates
// (leaf first) when certReq.
func (s *TSASigner) Token(l *TSALeaf, certReq bool) ([]byte, error) {
	if s.Cert == nil || s.Key == nil || len(s.Chain) == 0 {
		return nil, errors.New("rfc3161 token: no signing certificate, key or chain")
	}
	tst, err := s.TSTInfo(l)
	if err != nil {
		return nil, err
	}
	// The leaf must be issued by the chain's first certificate (the sid
	// names the leaf's own issuer field); checking so is an RSA-4096
	// verification, more than a token's signing, so once per pair.
	if err := checkIssuedOnce(s.Cert, s.Chain[0]); err != nil {
		return nil, err
	}
	return s.signedData(tst, certReq)
}

// issuedChecked remembers (leaf, issuer) pairs whose signature checked,
// so that a signer checks its certificate once, not per token. Parsed
// certificates are never changed, so a pair is known by its pointers
// (no hashing of the certificates on every token).
var issuedChecked = struct {
	sync.Mutex
	pairs map[[2]*x509.Certificate]bool
}{pairs: map[[2]*x509.Certificate]bool{}}

// checkIssuedOnce checks that issuer signed cert, once per pair.
func checkIssuedOnce(cert, issuer *x509.Certificate) error {
	k := [2]*x509.Certificate{cert, issuer}
	issuedChecked.Lock()
	ok := issuedChecked.pairs[k]
	issuedChecked.Unlock()
	if ok {
		return nil
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("rfc3161 token: the signing certificate is not issued by the first certificate of its chain (%s): %w", issuer.Subject, err)
	}
	issuedChecked.Lock()
	if len(issuedChecked.pairs) >= 64 {
		clear(issuedChecked.pairs)
	}
	issuedChecked.pairs[k] = true
	issuedChecked.Unlock()
	return nil
}

// EncodeTSAGranted is the TimeStampResp granting token.
func EncodeTSAGranted(token []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(0) }) // granted
		b.AddBytes(token)
	})
	return b.BytesOrPanic() // cannot fail: no builder error is possible
}

// EncodeTSARejection is the TimeStampResp refusing a request: status
// rejection, the reason as the status string, and the failure bit.
func EncodeTSARejection(e *TSAError) []byte {
	bit := int(e.Failure)
	if bit < 0 || bit > 31 {
		bit = int(TSASystemFailure)
	}
	reason := e.Reason
	if len(reason) > 512 {
		reason = reason[:512]
	}
	return rejection(bit, validUTF8(reason))
}

// rejection is a TimeStampResp whose failInfo has bit set, in DER: the
// named bit is the last of the BIT STRING.
func rejection(bit int, reason string) []byte {
	bits := make([]byte, bit/8+1)
	bits[bit/8] = 0x80 >> (bit % 8)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // rejection
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(reason)) })
			})
			b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
				b.AddUint8(uint8(7 - bit%8)) // unused bits: the named bit is the last one
				b.AddBytes(bits)
			})
		})
	})
	return b.BytesOrPanic()
}

func validUTF8(s string) string {
	return string([]rune(s)) // invalid bytes become U+FFFD
}
