package bench

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The standard check reads a token's CMS SignedData (RFC 5652) itself,
// in DER, rather than with digitorus/pkcs7: that parser converts BER to
// DER first (a seventh of the load generator's time per token), and it
// bumps a global counter as it does, which makes concurrent parsing a
// data race.

// More OIDs of RFC 5652, RFC 5480 and RFC 8017.
var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidECPublicKey   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
)

// signatureAlgorithms name, by signatureAlgorithm OID, the x509
// algorithm of a SignerInfo's signature; the key-only OIDs (id-ecPublicKey,
// rsaEncryption) depend on the digest and are in signatureAlgorithm.
var signatureAlgorithms = map[string]x509.SignatureAlgorithm{
	"1.2.840.10045.4.3.2":   x509.ECDSAWithSHA256,
	"1.2.840.10045.4.3.3":   x509.ECDSAWithSHA384,
	"1.2.840.10045.4.3.4":   x509.ECDSAWithSHA512,
	"1.2.840.113549.1.1.11": x509.SHA256WithRSA,
	"1.2.840.113549.1.1.12": x509.SHA384WithRSA,
	"1.2.840.113549.1.1.13": x509.SHA512WithRSA,
}

// signedToken is a DER TimeStampToken of one signer, as read for the
// standard check.
type signedToken struct {
	certs       []*x509.Certificate
	contentType asn1.ObjectIdentifier // eContentType
	content     []byte                // eContent: the TSTInfo
	issuer      []byte                // the signer's issuer Name (DER)
	serial      *big.Int              // and serial number
	digest      crypto.Hash
	sigAlg      x509.SignatureAlgorithm
	signed      []byte            // the signed attributes as signed: a DER SET
	attrs       map[string][]byte // attribute type -> its one value (DER)
	signature   []byte
}

// parseSignedToken reads a DER ContentInfo of a SignedData with one
// SignerInfo that names its certificate by issuer and serial and has
// signed attributes.
func parseSignedToken(der []byte) (*signedToken, error) {
	bad := func(what string) error { return fmt.Errorf("%w: CMS SignedData: %s", errTokenCheck, what) }
	in := cryptobyte.String(der)
	var ci, explicit, sd, algs, eci, ec, sis, si cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() || !ci.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidSignedData) ||
		!ci.ReadASN1(&explicit, cbasn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() ||
		!explicit.ReadASN1(&sd, cbasn1.SEQUENCE) || !explicit.Empty() {
		return nil, bad("not one DER ContentInfo of a SignedData")
	}
	t := &signedToken{attrs: map[string][]byte{}}
	var version int64
	if !sd.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || !sd.ReadASN1(&algs, cbasn1.SET) ||
		!sd.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&t.contentType) ||
		!eci.ReadASN1(&ec, cbasn1.Tag(0).Constructed().ContextSpecific()) || !eci.Empty() ||
		!ec.ReadASN1((*cryptobyte.String)(&t.content), cbasn1.OCTET_STRING) || !ec.Empty() {
		return nil, bad("no encapsulated content")
	}
	if sd.PeekASN1Tag(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		var certs cryptobyte.String
		if !sd.ReadASN1(&certs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
			return nil, bad("the certificates do not parse")
		}
		for !certs.Empty() {
			var c cryptobyte.String
			if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
				return nil, bad("a certificate that is not one")
			}
			cert, err := x509.ParseCertificate(c)
			if err != nil {
				return nil, bad(fmt.Sprintf("certificate %d: %v", len(t.certs)+1, err))
			}
			t.certs = append(t.certs, cert)
		}
	}
	if sd.PeekASN1Tag(cbasn1.Tag(1).Constructed().ContextSpecific()) && !sd.SkipASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, bad("the CRLs do not parse")
	}
	if !sd.ReadASN1(&sis, cbasn1.SET) || !sd.Empty() || !sis.ReadASN1(&si, cbasn1.SEQUENCE) {
		return nil, bad("no SignerInfo")
	}
	if !sis.Empty() {
		return nil, bad("more than one signer")
	}
	if err := t.readSignerInfo(&si); err != nil {
		return nil, bad(err.Error())
	}
	return t, nil
}

func (t *signedToken) readSignerInfo(si *cryptobyte.String) error {
	var version int64
	var sid, name, dalg, salg cryptobyte.String
	var digestOID, sigOID asn1.ObjectIdentifier
	t.serial = new(big.Int)
	if !si.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || version != 1 || !si.ReadASN1(&sid, cbasn1.SEQUENCE) ||
		!sid.ReadASN1Element(&name, cbasn1.SEQUENCE) || !sid.ReadASN1Integer(t.serial) || !sid.Empty() {
		return fmt.Errorf("the signer is not named by issuer and serial (SignerInfo version 1)")
	}
	t.issuer = name
	if !si.ReadASN1(&dalg, cbasn1.SEQUENCE) || !dalg.ReadASN1ObjectIdentifier(&digestOID) {
		return fmt.Errorf("no digest algorithm")
	}
	switch {
	case digestOID.Equal(oidSHA256):
		t.digest = crypto.SHA256
	case digestOID.Equal(oidSHA384):
		t.digest = crypto.SHA384
	case digestOID.Equal(oidSHA512):
		t.digest = crypto.SHA512
	default:
		return fmt.Errorf("digest algorithm %s, want SHA-256, SHA-384 or SHA-512", digestOID)
	}
	var attrs cryptobyte.String
	if !si.ReadASN1Element(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return fmt.Errorf("no signed attributes")
	}
	// What is signed is the attributes' DER with the SET tag (§5.4).
	t.signed = append([]byte{0x31}, attrs[1:]...)
	var set cryptobyte.String
	if !attrs.ReadASN1(&set, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return fmt.Errorf("the signed attributes do not parse")
	}
	for !set.Empty() {
		var attr, values, value cryptobyte.String
		var typ asn1.ObjectIdentifier
		if !set.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&typ) || !attr.ReadASN1(&values, cbasn1.SET) ||
			!values.ReadAnyASN1Element(&value, nil) || !values.Empty() {
			return fmt.Errorf("a signed attribute that is not one type with one value")
		}
		if _, dup := t.attrs[typ.String()]; dup {
			return fmt.Errorf("signed attribute %s twice", typ)
		}
		t.attrs[typ.String()] = value
	}
	if !si.ReadASN1(&salg, cbasn1.SEQUENCE) || !salg.ReadASN1ObjectIdentifier(&sigOID) ||
		!si.ReadASN1((*cryptobyte.String)(&t.signature), cbasn1.OCTET_STRING) {
		return fmt.Errorf("no signature")
	}
	if t.sigAlg = signatureAlgorithm(sigOID, t.digest); t.sigAlg == x509.UnknownSignatureAlgorithm {
		return fmt.Errorf("signature algorithm %s with %v is not supported", sigOID, t.digest)
	}
	return nil // unsigned attributes, if any, are not looked at
}

// signatureAlgorithm is the x509 algorithm of a SignerInfo's signature
// algorithm OID and digest.
func signatureAlgorithm(oid asn1.ObjectIdentifier, digest crypto.Hash) x509.SignatureAlgorithm {
	if a, ok := signatureAlgorithms[oid.String()]; ok {
		return a
	}
	byDigest := map[crypto.Hash][2]x509.SignatureAlgorithm{
		crypto.SHA256: {x509.ECDSAWithSHA256, x509.SHA256WithRSA},
		crypto.SHA384: {x509.ECDSAWithSHA384, x509.SHA384WithRSA},
		crypto.SHA512: {x509.ECDSAWithSHA512, x509.SHA512WithRSA},
	}[digest]
	switch {
	case oid.Equal(oidECPublicKey):
		return byDigest[0]
	case oid.Equal(oidRSA):
		return byDigest[1]
	}
	return x509.UnknownSignatureAlgorithm
}

// verify checks that the signer's signature by signer is over the
// signed attributes, whose content type is the eContentType and whose
// message digest is the content's.
func (t *signedToken) verify(signer *x509.Certificate) error {
	if err := signer.CheckSignature(t.sigAlg, t.signed, t.signature); err != nil {
		return fmt.Errorf("%w: the CMS signature: %v", errTokenCheck, err)
	}
	var ct asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(t.attrs[oidContentType.String()], &ct); err != nil || len(rest) > 0 || !ct.Equal(t.contentType) {
		return fmt.Errorf("%w: the content-type attribute is not the content's type", errTokenCheck)
	}
	var md []byte
	if rest, err := asn1.Unmarshal(t.attrs[oidMessageDigest.String()], &md); err != nil || len(rest) > 0 {
		return fmt.Errorf("%w: no message-digest attribute", errTokenCheck)
	}
	h := t.digest.New()
	h.Write(t.content)
	if !bytes.Equal(md, h.Sum(nil)) {
		return fmt.Errorf("%w: the message-digest attribute is not the content's digest", errTokenCheck)
	}
	return nil
}

// signerOf is the certificate, among the token's and extra, that names
// the token's signer by issuer and serial; nil if none.
func (t *signedToken) signerOf(extra []*x509.Certificate) *x509.Certificate {
	for _, certs := range [][]*x509.Certificate{t.certs, extra} {
		for _, cert := range certs {
			if cert.SerialNumber.Cmp(t.serial) == 0 && bytes.Equal(cert.RawIssuer, t.issuer) {
				return cert
			}
		}
	}
	return nil
}
