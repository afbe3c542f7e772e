package protocol

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/tsnode/tsnode/identity"
)

// The certificate profile of §14.1.
const (
	// TSARootValidity is how long a root certificate is valid. Trust is in
	// the identity key it certifies, not in the certificate.
	TSARootValidity = 10 * 365 * 24 * time.Hour
	// TSALeafValidity is how long a signing certificate is valid unless
	// --tsa-cert-lifetime says otherwise.
	TSALeafValidity = 30 * 24 * time.Hour
	// TSARenewBefore is how close to its end a certificate is renewed
	// (a signing certificate of a shorter lifetime: TSARenewWithin).
	TSARenewBefore = 7 * 24 * time.Hour
	// tsaBackdate is how long before its making a certificate is valid,
	// for verifiers whose clock is a little behind.
	tsaBackdate = time.Hour
)

var (
	oidExtKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	criticalEKUTimeStp = func() pkix.Extension {
		v, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
		return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v}
	}()
)

// TSARenewWithin is how close to its end a signing certificate of the
// given lifetime is renewed: TSARenewBefore, or a quarter of a lifetime
// shorter than four times that (a test's), so that a certificate is
// never due the moment it is made.
func TSARenewWithin(lifetime time.Duration) time.Duration {
	if q := lifetime / 4; q < TSARenewBefore {
		return q
	}
	return TSARenewBefore
}

func certSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewTSARoot makes the self-signed root certificate of the authority id
// for its RSA identity key.
func NewTSARoot(id identity.ID, key *rsa.PrivateKey, now time.Time) (*x509.Certificate, error) {
	serial, err := certSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"tsnode"}, CommonName: "tsnode " + string(id) + " root"},
		NotBefore:             now.Add(-tsaBackdate),
		NotAfter:              now.Add(TSARootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("making the RFC 3161 root certificate of %s: %w", id, err)
	}
	return x509.ParseCertificate(der)
}

// NewTSALeafCert issues, under root (whose key is rootKey), the signing
// certificate of the authority id for pub, valid from an hour before now
// until lifetime after it (never past the root's end): critical extended
// key usage id-kp-timeStamping only, digitalSignature.
func NewTSALeafCert(id identity.ID, root *x509.Certificate, rootKey crypto.Signer, pub crypto.PublicKey, now time.Time, lifetime time.Duration) (*x509.Certificate, error) {
	if lifetime <= 0 {
		return nil, fmt.Errorf("the RFC 3161 signing certificate of %s: lifetime %v", id, lifetime)
	}
	serial, err := certSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"tsnode"}, CommonName: "tsnode " + string(id) + " TSA"},
		NotBefore:             now.Add(-tsaBackdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{criticalEKUTimeStp},
	}
	if tmpl.NotAfter.After(root.NotAfter) {
		tmpl.NotAfter = root.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
	if err != nil {
		return nil, fmt.Errorf("making the RFC 3161 signing certificate of %s: %w", id, err)
	}
	return x509.ParseCertificate(der)
}

// CheckTSAChain checks chain (signing certificate, then root) against the
// profile of §14.1: the root is self-signed for identityKey; the leaf is
// issued by it, has critical extended key usage id-kp-timeStamping and
// nothing else, and digitalSignature. Validity periods are not checked.
func CheckTSAChain(chain []*x509.Certificate, identityKey *rsa.PublicKey) error {
	if len(chain) != 2 {
		return fmt.Errorf("rfc3161 chain: %d certificates, want 2 (signing certificate, root)", len(chain))
	}
	leaf, root := chain[0], chain[1]
	if !identityKey.Equal(root.PublicKey) {
		return errors.New("rfc3161 chain: the root certificate is not for the authority's identity key")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("rfc3161 chain: the root certificate is not self-signed: %v", err)
	}
	if err := leaf.CheckSignatureFrom(root); err != nil {
		return fmt.Errorf("rfc3161 chain: the signing certificate is not issued by the root: %v", err)
	}
	eku := false
	for _, e := range leaf.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			eku = e.Critical && bytes.Equal(e.Value, criticalEKUTimeStp.Value)
		}
	}
	if !eku {
		return errors.New("rfc3161 chain: the signing certificate's extended key usage is not critical id-kp-timeStamping alone")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("rfc3161 chain: the signing certificate lacks the digitalSignature key usage")
	}
	return nil
}

// EncodeCertsPEM writes certs as PEM CERTIFICATE blocks, in order.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// ParseCertsPEM reads every CERTIFICATE block of b, in order; anything
// else in b is an error.
func ParseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a PEM block of type %q where certificates are expected", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return nil, fmt.Errorf("bytes after certificate %d that are not PEM", len(certs))
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificates")
	}
	return certs, nil
}
