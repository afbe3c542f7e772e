package protocol

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tsnode/tsnode/identity"
)

// CheckTSAToken checks an RFC 3161 TimeStampToken (DER) the way §14.5
// says, in this order, and stops at the first failure: it parses (CMS
// SignedData of a TSTInfo, one signer); the signing certificate is among
// the token's certificates or extra; a root that issued it is there too
// and its public key is the identity key of a trusted authority (the
// current key, or a retired key for a genTime before its rotation: the
// trust rule of §10.2); the chain has the profile of §14.1 (timeStamping
// alone, critical); genTime is within the validity of both certificates;
// the CMS signature verifies with the signing certificate, over signed
// attributes whose content type is id-ct-TSTInfo and whose
// signing-certificate-v2 names the signing certificate; and the message
// imprint is digest(hash) of the document, for the token's hash. extra
// are certificates from elsewhere (the published chains), for a token
// asked without certReq.
func (t *Trust) CheckTSAToken(der []byte, extra []*x509.Certificate, digest func(crypto.Hash) ([]byte, error)) (*TSAToken, error) {
	tok, p7, err := parseTSAToken(der)
	if err != nil {
		return nil, err
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: %d signers, want 1", ErrMalformedToken, len(p7.Signers))
	}
	certs := append(append([]*x509.Certificate{}, p7.Certificates...), extra...)
	ias := p7.Signers[0].IssuerAndSerialNumber
	var signer *x509.Certificate
	for _, c := range certs {
		if ias.SerialNumber != nil && c.SerialNumber.Cmp(ias.SerialNumber) == 0 && bytes.Equal(c.RawIssuer, ias.IssuerName.FullBytes) {
			signer = c
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: the signing certificate is neither in the token nor among the published chains (ask with certReq)", ErrBadTSAChain)
	}
	root, key, err := t.tsaRoot(signer, certs, tok)
	if err != nil {
		return nil, err
	}
	if err := CheckTSAChain([]*x509.Certificate{signer, root}, key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTSAChain, err)
	}
	for _, c := range []*x509.Certificate{signer, root} {
		if tok.Time.Before(c.NotBefore) || tok.Time.After(c.NotAfter) {
			return nil, fmt.Errorf("%w: genTime %s is outside the validity of %q (%s to %s)", ErrCertValidity,
				FormatTime(tok.Time), c.Subject.CommonName, FormatTime(c.NotBefore), FormatTime(c.NotAfter))
		}
	}
	p7.Certificates = []*x509.Certificate{signer, root}
	if err := p7.Verify(); err != nil {
		return nil, fmt.Errorf("%w: the token's CMS signature: %v", ErrBadSignature, err)
	}
	if err := checkSignedAttributes(p7, signer); err != nil {
		return nil, err
	}
	want, err := digest(tok.Hash)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(want, tok.Imprint) {
		return nil, fmt.Errorf("%w: the token's %s imprint is %x, the document's %x", ErrHashMismatch, TSAHashName(tok.Hash), tok.Imprint, want)
	}
	tok.Signer, tok.Root = signer, root
	return tok, nil
}

// tsaRoot finds, among certs, a root that issued signer and whose key is
// that of a trusted authority at the token's time; it sets tok's server.
func (t *Trust) tsaRoot(signer *x509.Certificate, certs []*x509.Certificate, tok *TSAToken) (*x509.Certificate, *rsa.PublicKey, error) {
	var firstErr error
	for _, c := range certs {
		if !bytes.Equal(c.RawSubject, signer.RawIssuer) || !bytes.Equal(c.RawSubject, c.RawIssuer) || signer.CheckSignatureFrom(c) != nil {
			continue
		}
		id, p, key, err := t.authorityOfKey(c.PublicKey, tok.Time)
		if err == nil {
			tok.ServerID, tok.ServerPeer = id, p
			return c, key, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: no self-signed root that issued the signing certificate %q is in the token or the published chains", ErrBadTSAChain, signer.Subject.CommonName)
	}
	return nil, nil, firstErr
}

// authorityOfKey is the trusted authority whose identity key pub is: its
// current key, or a retired key when at is before its rotation (§10.2).
func (t *Trust) authorityOfKey(pub crypto.PublicKey, at time.Time) (identity.ID, peer.ID, *rsa.PublicKey, error) {
	var retired error
	for _, id := range t.Authorities() {
		a := t.authorities[id]
		if a.current.PublicKey.Equal(pub) {
			return id, a.current.PeerID, a.current.PublicKey, nil
		}
		for _, k := range a.retired {
			if !k.PublicKey.Equal(pub) {
				continue
			}
			if at.Before(k.RetiredAt) {
				return id, k.PeerID, k.PublicKey, nil
			}
			retired = fmt.Errorf("%w: the root is for key %s of %s, retired at %s (replaced by %s); the token is dated %s",
				ErrRetiredKey, k.PeerID, id, FormatTime(k.RetiredAt), k.Successor, FormatTime(at))
		}
	}
	if retired != nil {
		return "", "", nil, retired
	}
	return "", "", nil, fmt.Errorf("%w: the token's root certificate is not for the identity key of a trusted authority (trusted: %v)", ErrUntrustedSigner, t.Authorities())
}

// checkSignedAttributes checks the content type (id-ct-TSTInfo) and the
// signing-certificate-v2 attribute (RFC 5816): an ESSCertIDv2 whose hash
// (SHA-256 unless it names another) is the signing certificate's.
func checkSignedAttributes(p7 *pkcs7.PKCS7, signer *x509.Certificate) error {
	var ct asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeContentType, &ct); err != nil || !ct.Equal(oidTSTInfo) {
		return fmt.Errorf("%w: the signed content type is not id-ct-TSTInfo", ErrMalformedToken)
	}
	var raw asn1.RawValue
	if err := p7.UnmarshalSignedAttribute(oidSigningCertificateV2, &raw); err != nil {
		return fmt.Errorf("%w: no signing-certificate-v2 attribute (RFC 5816)", ErrMalformedToken)
	}
	in := cryptobyte.String(raw.FullBytes)
	var sc, ids, id, h cryptobyte.String
	if !in.ReadASN1(&sc, cbasn1.SEQUENCE) || !sc.ReadASN1(&ids, cbasn1.SEQUENCE) || !ids.ReadASN1(&id, cbasn1.SEQUENCE) {
		return fmt.Errorf("%w: signing-certificate-v2 does not parse", ErrMalformedToken)
	}
	if id.PeekASN1Tag(cbasn1.SEQUENCE) { // hashAlgorithm, when not SHA-256
		return fmt.Errorf("%w: signing-certificate-v2 names a hash other than the default SHA-256", ErrMalformedToken)
	}
	sum := sha256.Sum256(signer.Raw)
	if !id.ReadASN1(&h, cbasn1.OCTET_STRING) || !bytes.Equal(h, sum[:]) {
		return fmt.Errorf("%w: signing-certificate-v2 is not the signing certificate's hash", ErrBadTSAChain)
	}
	return nil
}

// TSADigest hashes the document at path with h, for CheckTSAToken.
func TSADigest(path string) func(crypto.Hash) ([]byte, error) {
	return func(h crypto.Hash) ([]byte, error) {
		if TSAHashName(h) == "" {
			return nil, fmt.Errorf("%w: hash %v", ErrMalformedToken, h)
		}
		return hashFileWith(path, h)
	}
}
