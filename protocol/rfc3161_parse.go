package protocol

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tsnode/tsnode/identity"
)

// TSAToken is what a TimeStampToken says (its TSTInfo, §14.3), and, once
// Trust.CheckTSAToken accepted it, who vouches for it.
type TSAToken struct {
	Hash     crypto.Hash
	Imprint  []byte
	Serial   uint64
	Time     time.Time // genTime
	Policy   string    // dotted OID
	Accuracy time.Duration
	// Nonce is the content of the nonce INTEGER; nil when there is none.
	Nonce []byte
	// Raw is the DER TimeStampToken (the CMS ContentInfo).
	Raw []byte
	// Set by Trust.CheckTSAToken: the signing certificate and the root
	// it was verified with, and the trusted authority (and its key's
	// peer ID) whose identity key the root is for.
	Signer, Root *x509.Certificate
	ServerID     identity.ID
	ServerPeer   peer.ID
}

// ParseTSAResponse reads a DER TimeStampResp and returns its
// TimeStampToken. A response that is not granted (status 0 or 1) is a
// *TSAError with the failure bit and status string sent; a response that
// does not parse is ErrMalformed.
func ParseTSAResponse(der []byte) ([]byte, error) {
	in := cryptobyte.String(der)
	var resp, status cryptobyte.String
	if !in.ReadASN1(&resp, cbasn1.SEQUENCE) || !in.Empty() || !resp.ReadASN1(&status, cbasn1.SEQUENCE) {
		return nil, fmt.Errorf("%w: not one DER TimeStampResp", ErrMalformed)
	}
	var code int64
	if !status.ReadASN1Int64WithTag(&code, cbasn1.INTEGER) {
		return nil, fmt.Errorf("%w: TimeStampResp: no PKIStatus", ErrMalformed)
	}
	if code != 0 && code != 1 {
		e := &TSAError{Failure: -1}
		var texts cryptobyte.String
		if status.PeekASN1Tag(cbasn1.SEQUENCE) && status.ReadASN1(&texts, cbasn1.SEQUENCE) {
			for !texts.Empty() {
				var s cryptobyte.String
				if !texts.ReadASN1(&s, cbasn1.UTF8String) {
					break
				}
				e.Reason += printable(s, 200)
			}
		}
		var bits cryptobyte.String
		if status.ReadASN1(&bits, cbasn1.BIT_STRING) && len(bits) > 1 {
			for i, b := range bits[1:] {
				for j := 0; j < 8; j++ {
					if b&(0x80>>j) != 0 && e.Failure < 0 {
						e.Failure = TSAFailure(i*8 + j)
					}
				}
			}
		}
		return nil, fmt.Errorf("%w: status %d: %w", ErrRefused, code, e)
	}
	var token cryptobyte.String
	if !resp.ReadASN1Element(&token, cbasn1.SEQUENCE) || !resp.Empty() {
		return nil, fmt.Errorf("%w: a granted TimeStampResp without one TimeStampToken", ErrMalformed)
	}
	return bytes.Clone(token), nil
}

// ParseTSAToken decodes a DER TimeStampToken: the CMS SignedData and its
// TSTInfo, checking nothing of its signature or certificates.
func ParseTSAToken(der []byte) (*TSAToken, error) {
	tok, _, err := parseTSAToken(der)
	return tok, err
}

// pkcs7Parsing serialises pkcs7.Parse: its BER-to-DER pass updates a
// package-level counter (ber.go's encodeIndent), a data race when two
// tokens are checked at once.
var pkcs7Parsing sync.Mutex

// parsePKCS7 is pkcs7.Parse under pkcs7Parsing, released even if it
// panics (parseTSAToken recovers).
func parsePKCS7(der []byte) (*pkcs7.PKCS7, error) {
	pkcs7Parsing.Lock()
	defer pkcs7Parsing.Unlock()
	return pkcs7.Parse(der)
}

func parseTSAToken(der []byte) (tok *TSAToken, p7 *pkcs7.PKCS7, err error) {
	defer func() {
		// pkcs7 is a third-party parser: bad input must not panic.
		if r := recover(); r != nil {
			tok, p7, err = nil, nil, fmt.Errorf("%w: token: CMS parser failed: %v", ErrMalformedToken, r)
		}
	}()
	in := cryptobyte.String(der)
	var ci cryptobyte.String
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, nil, fmt.Errorf("%w: not one DER ContentInfo", ErrMalformedToken)
	}
	p7, err = parsePKCS7(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: CMS SignedData: %v", ErrMalformedToken, err)
	}
	tok, err = parseTSTInfo(p7.Content)
	if err != nil {
		return nil, nil, err
	}
	tok.Raw = bytes.Clone(der)
	return tok, p7, nil
}

// parseTSTInfo decodes a DER TSTInfo (RFC 3161 §2.4.2). tsnode serials
// are u64: a larger serialNumber is refused.
func parseTSTInfo(der []byte) (*TSAToken, error) {
	bad := func(what string) error { return fmt.Errorf("%w: TSTInfo: %s", ErrMalformedToken, what) }
	in := cryptobyte.String(der)
	var info, policy, imprint, alg, oid, hashed cryptobyte.String
	var version int64
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, bad("not one DER SEQUENCE")
	}
	if !info.ReadASN1Int64WithTag(&version, cbasn1.INTEGER) || version != 1 {
		return nil, bad("version is not 1")
	}
	if !info.ReadASN1(&policy, cbasn1.OBJECT_IDENTIFIER) {
		return nil, bad("no policy OID")
	}
	if !info.ReadASN1(&imprint, cbasn1.SEQUENCE) || !imprint.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !imprint.ReadASN1(&hashed, cbasn1.OCTET_STRING) || !imprint.Empty() {
		return nil, bad("messageImprint is not an AlgorithmIdentifier and an OCTET STRING")
	}
	t := &TSAToken{Policy: oidString(policy), Imprint: bytes.Clone(hashed)}
	name := oidString(oid)
	for _, a := range tsaHashes {
		if name == a.oid.String() {
			t.Hash = a.hash
		}
	}
	if t.Hash == 0 {
		return nil, bad(fmt.Sprintf("hash algorithm %s, want SHA-256, SHA-384 or SHA-512", name))
	}
	if len(t.Imprint) != t.Hash.Size() {
		return nil, bad(fmt.Sprintf("the %s imprint is %d bytes", TSAHashName(t.Hash), len(t.Imprint)))
	}
	serial := new(big.Int)
	if !info.ReadASN1Integer(serial) || serial.Sign() < 0 || !serial.IsUint64() {
		return nil, bad("serialNumber is not an INTEGER from 0 to 2^64-1 (not a tsnode serial)")
	}
	t.Serial = serial.Uint64()
	var gt cryptobyte.String
	if !info.ReadASN1(&gt, cbasn1.GeneralizedTime) {
		return nil, bad("no genTime")
	}
	var err error
	if t.Time, err = time.Parse("20060102150405Z", string(gt)); err != nil || GeneralizedTime(t.Time) != string(gt) {
		return nil, bad(fmt.Sprintf("genTime %q is not a DER GeneralizedTime", printable(gt, 40)))
	}
	if info.PeekASN1Tag(cbasn1.SEQUENCE) {
		if t.Accuracy, err = parseAccuracy(&info); err != nil {
			return nil, bad(err.Error())
		}
	}
	if info.PeekASN1Tag(cbasn1.BOOLEAN) {
		var ordering bool
		if !info.ReadASN1Boolean(&ordering) {
			return nil, bad("ordering is not a BOOLEAN")
		}
	}
	if info.PeekASN1Tag(cbasn1.INTEGER) {
		var nonce cryptobyte.String
		if !info.ReadASN1(&nonce, cbasn1.INTEGER) || !minimalInteger(nonce) {
			return nil, bad("the nonce is not a DER INTEGER")
		}
		t.Nonce = bytes.Clone(nonce)
	}
	tsaTag, extTag := cbasn1.Tag(0).Constructed().ContextSpecific(), cbasn1.Tag(1).Constructed().ContextSpecific()
	var skip cryptobyte.String
	if info.PeekASN1Tag(tsaTag) && !info.ReadASN1(&skip, tsaTag) {
		return nil, bad("the tsa name does not parse")
	}
	if info.PeekASN1Tag(extTag) && !info.ReadASN1(&skip, extTag) {
		return nil, bad("the extensions do not parse")
	}
	if !info.Empty() {
		return nil, bad("unexpected fields after genTime")
	}
	return t, nil
}

// parseAccuracy reads Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL,
// millis [0] INTEGER OPTIONAL, micros [1] INTEGER OPTIONAL }.
func parseAccuracy(in *cryptobyte.String) (time.Duration, error) {
	var acc cryptobyte.String
	if !in.ReadASN1(&acc, cbasn1.SEQUENCE) {
		return 0, fmt.Errorf("accuracy is not a SEQUENCE")
	}
	var sec, ms, us int64
	if acc.PeekASN1Tag(cbasn1.INTEGER) && (!acc.ReadASN1Int64WithTag(&sec, cbasn1.INTEGER) || sec < 0 || sec > 1<<31) {
		return 0, fmt.Errorf("accuracy seconds out of range")
	}
	for i, v := range []*int64{&ms, &us} {
		tag := cbasn1.Tag(i).ContextSpecific()
		if acc.PeekASN1Tag(tag) && (!acc.ReadASN1Int64WithTag(v, tag) || *v < 1 || *v > 999) {
			return 0, fmt.Errorf("accuracy millis or micros not from 1 to 999")
		}
	}
	if !acc.Empty() {
		return 0, fmt.Errorf("accuracy has unexpected fields")
	}
	return time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond + time.Duration(us)*time.Microsecond, nil
}
