package protocol

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The TimeStampToken is written here directly in DER, not with pkcs7's
// SignedData, whose reflection-based encoding/asn1.Marshal took a third
// of a token's CPU. It is what pkcs7 wrote, field for field (parsing and
// checking stay on pkcs7), but for the empty certificates field pkcs7
// wrote without certReq, which RFC 3161 §2.4.1 says MUST NOT be present.

// OIDs of CMS (RFC 5652) and of its algorithms (RFC 5754, RFC 4055).
var (
	oidCMSSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidCMSContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidCMSMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidCMSSigningTime     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidCMSSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidCMSECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidCMSRSAWithSHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	// cmsTag0 is [0], constructed: EXPLICIT, or IMPLICIT over a SET.
	cmsTag0 = cbasn1.Tag(0).Constructed().ContextSpecific()
)

// addAlgorithm writes an AlgorithmIdentifier without parameters, as pkcs7
// did: RFC 5754 §2 and §3.2 allow it for SHA-256 and require it for
// ECDSA; RFC 4055 §5's NULL for sha256WithRSAEncryption is left out as
// before, and openssl, osslsigncode and jarsigner accept it so.
func addAlgorithm(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oid) })
}

// signedAttributes is the DER SET OF Attribute of the signer: content
// type, message digest, signing time and signing-certificate-v2, sorted
// by encoding, as DER orders a SET OF (X.690 §11.6): a verifier hashes
// them in the order they come, and some re-encode them before hashing.
func signedAttributes(digest, essV2 []byte, now time.Time) ([]byte, error) {
	var b cryptobyte.Builder
	attr := func(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
	}
	attr(oidCMSContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidTSTInfo) })
	attr(oidCMSMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
	attr(oidCMSSigningTime, func(b *cryptobyte.Builder) {
		// RFC 5652 §11.3: UTCTime from 1950 to 2049, GeneralizedTime
		// otherwise; whole seconds in UTC either way.
		if t := now.UTC().Truncate(time.Second); t.Year() >= 1950 && t.Year() < 2050 {
			b.AddASN1UTCTime(t)
		} else {
			b.AddASN1GeneralizedTime(t)
		}
	})
	attr(oidSigningCertificateV2, func(b *cryptobyte.Builder) { b.AddBytes(essV2) })
	all, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("rfc3161 token: signed attributes: %w", err)
	}
	var attrs [4][]byte
	s := cryptobyte.String(all)
	for i := range attrs {
		if !s.ReadASN1Element((*cryptobyte.String)(&attrs[i]), cbasn1.SEQUENCE) {
			return nil, fmt.Errorf("rfc3161 token: signed attribute %d does not read back", i)
		}
	}
	slices.SortFunc(attrs[:], bytes.Compare)
	set := cryptobyte.NewBuilder(make([]byte, 0, len(all)+4))
	set.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	return set.Bytes()
}

// signedData is the TimeStampToken of the DER TSTInfo tst: a ContentInfo
// of a SignedData (RFC 5652 §5) with one signer, s.Cert by issuer and
// serial, whose signature is over the signed attributes; and the
// certificates, leaf then chain, when certReq.
func (s *TSASigner) signedData(tst []byte, certReq bool) ([]byte, error) {
	var sigAlg asn1.ObjectIdentifier
	switch s.Key.Public().(type) {
	case *ecdsa.PublicKey:
		sigAlg = oidCMSECDSAWithSHA256
	case *rsa.PublicKey: // --tsa-key identity; PKCS #1 v1.5, as before
		sigAlg = oidCMSRSAWithSHA256
	default:
		return nil, fmt.Errorf("rfc3161 token: signing key %T is neither ECDSA nor RSA", s.Key.Public())
	}
	essV2, err := signingCertificateV2(s.Cert)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tst)
	attrs, err := signedAttributes(digest[:], essV2, time.Now())
	if err != nil {
		return nil, err
	}
	// The signature is over the attributes as a SET OF (RFC 5652 §5.4),
	// not as the [0] IMPLICIT that the SignerInfo holds.
	h := sha256.Sum256(attrs)
	sig, err := s.Key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("rfc3161 token: signing: %w", err)
	}
	size := len(tst) + len(attrs) + len(sig) + len(s.Cert.RawIssuer) + 256 // one allocation
	if certReq {
		size += len(s.Cert.Raw)
		for _, c := range s.Chain {
			size += len(c.Raw)
		}
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidCMSSignedData)
		b.AddASN1(cmsTag0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(3) // eContentType is not id-data (RFC 5652 §5.1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { addAlgorithm(b, oidCMSSHA256) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // encapContentInfo
					b.AddASN1ObjectIdentifier(oidTSTInfo)
					b.AddASN1(cmsTag0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(tst) })
				})
				if certReq {
					b.AddASN1(cmsTag0, func(b *cryptobyte.Builder) { // certificates [0] IMPLICIT
						b.AddBytes(s.Cert.Raw)
						for _, c := range s.Chain {
							b.AddBytes(c.Raw)
						}
					})
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { // signerInfos
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(1) // sid is issuerAndSerialNumber
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(s.Cert.RawIssuer)
							b.AddASN1BigInt(s.Cert.SerialNumber)
						})
						addAlgorithm(b, oidCMSSHA256)
						// signedAttrs [0] IMPLICIT: the SET's encoding, retagged.
						b.AddUint8(byte(cmsTag0))
						b.AddBytes(attrs[1:])
						addAlgorithm(b, sigAlg)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	token, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("rfc3161 token: encoding the SignedData: %w", err)
	}
	return token, nil
}
