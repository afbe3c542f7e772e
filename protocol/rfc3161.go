package protocol

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/tsnode/tsnode/identity"
)

// RFC 3161 time-stamping (PROTOCOL.md §14): a TimeStampReq in, a
// TimeStampResp out, and every token granted is first a leaf of the log.
const (
	// RFC3161LeafTag is field 0 of the log leaf of an RFC 3161 token (§14.2).
	RFC3161LeafTag = "tsnode-rfc3161-leaf-v1"
	// RFC3161ProtocolID carries one DER TimeStampReq and its TimeStampResp,
	// one frame each (§14.4).
	RFC3161ProtocolID = "/tsnode/rfc3161/1.0.0"
	// RFC3161ServiceName is the resource manager's name for the service.
	RFC3161ServiceName = "tsnode.rfc3161"
	// MaxTSARequestSize bounds a TimeStampReq (an HTTP body or a frame).
	MaxTSARequestSize = 64 << 10
	// MaxTSAResponseSize bounds a TimeStampResp.
	MaxTSAResponseSize = 64 << 10
	// MaxTSANonceSize bounds the content of the request's nonce INTEGER.
	MaxTSANonceSize = 64
	// DefaultTSAPolicy is the policy of tsnode's tokens unless --tsa-policy
	// names another. tsnode has no Private Enterprise Number: this one is
	// under 32473, which RFC 5612 reserves for documentation, and an
	// operator with a PEN of its own should set --tsa-policy. (A 2.25 UUID
	// OID needs no registration, but Go's encoding/asn1, and with it the
	// sigstore and digitorus clients, cannot read arcs above 2^63.)
	DefaultTSAPolicy = "1.3.6.1.4.1.32473.3161.1"
	// TSAViaHTTP and TSAViaLibp2p say how a token was asked for (leaf field 7).
	TSAViaHTTP   = "http"
	TSAViaLibp2p = "libp2p"
)

// TSAFailure is a PKIFailureInfo bit (RFC 3161 §2.4.2).
type TSAFailure int

// The failure bits tsnode answers with.
const (
	TSABadAlg              TSAFailure = 0
	TSABadRequest          TSAFailure = 2
	TSABadDataFormat       TSAFailure = 5
	TSATimeNotAvailable    TSAFailure = 14
	TSAUnacceptedPolicy    TSAFailure = 15
	TSAUnacceptedExtension TSAFailure = 16
	TSASystemFailure       TSAFailure = 25
)

func (f TSAFailure) String() string {
	switch f {
	case TSABadAlg:
		return "badAlg"
	case TSABadRequest:
		return "badRequest"
	case TSABadDataFormat:
		return "badDataFormat"
	case TSATimeNotAvailable:
		return "timeNotAvailable"
	case TSAUnacceptedPolicy:
		return "unacceptedPolicy"
	case TSAUnacceptedExtension:
		return "unacceptedExtension"
	case TSASystemFailure:
		return "systemFailure"
	}
	return fmt.Sprintf("failure bit %d", int(f))
}

// TSAError is a refused request: the failure info sent, and why in words
// (sent as the status string).
type TSAError struct {
	Failure TSAFailure
	Reason  string
}

func (e *TSAError) Error() string { return "rfc3161 " + e.Failure.String() + ": " + e.Reason }

func tsaErr(f TSAFailure, format string, args ...any) *TSAError {
	return &TSAError{Failure: f, Reason: fmt.Sprintf(format, args...)}
}

// TSA hash algorithms: the name in the leaf, the hash, its OID.
var tsaHashes = []struct {
	name string
	hash crypto.Hash
	oid  asn1.ObjectIdentifier
}{
	{"sha-256", crypto.SHA256, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}},
	{"sha-384", crypto.SHA384, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}},
	{"sha-512", crypto.SHA512, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}},
}

// weakHashes name the algorithms refused by name rather than as unknown.
var weakHashes = map[string]string{
	"1.2.840.113549.2.5": "MD5",
	"1.3.14.3.2.26":      "SHA-1",
}

// TSAHashName is the leaf's name of h ("sha-256", ...), "" if not taken.
func TSAHashName(h crypto.Hash) string {
	for _, a := range tsaHashes {
		if a.hash == h {
			return a.name
		}
	}
	return ""
}

func tsaHashByName(name string) (crypto.Hash, bool) {
	for _, a := range tsaHashes {
		if a.name == name {
			return a.hash, true
		}
	}
	return 0, false
}

func tsaHashOID(h crypto.Hash) asn1.ObjectIdentifier {
	for _, a := range tsaHashes {
		if a.hash == h {
			return a.oid
		}
	}
	return nil
}

// TSARequest is a TimeStampReq that tsnode accepts.
type TSARequest struct {
	Hash    crypto.Hash
	Imprint []byte
	// Nonce is the content of the nonce INTEGER, exactly as sent (it is
	// echoed in these bytes); nil when the request has none.
	Nonce   []byte
	CertReq bool
}

// ParseTSARequest decodes a DER TimeStampReq (RFC 3161 §2.4.1) and checks
// it against tsnode's rules; policy is the DER of tsnode's policy OID. The
// error is always a *TSAError, in the order of the checks: undecodable
// (badDataFormat), version not 1 (badRequest), hash not SHA-256/384/512
// (badAlg), another policy (unacceptedPolicy), any extension
// (unacceptedExtension).
func ParseTSARequest(der []byte, policy []byte) (*TSARequest, error) {
	in := cryptobyte.String(der)
	var req, imprint, alg, oid, hashed, version cryptobyte.String
	if !in.ReadASN1(&req, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, tsaErr(TSABadDataFormat, "not one DER TimeStampReq (a SEQUENCE and nothing after it)")
	}
	if !req.ReadASN1(&version, cbasn1.INTEGER) {
		return nil, tsaErr(TSABadDataFormat, "no version INTEGER")
	}
	if !req.ReadASN1(&imprint, cbasn1.SEQUENCE) || !imprint.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !imprint.ReadASN1(&hashed, cbasn1.OCTET_STRING) || !imprint.Empty() {
		return nil, tsaErr(TSABadDataFormat, "messageImprint is not a SEQUENCE of an AlgorithmIdentifier and an OCTET STRING")
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !alg.Empty() {
			return nil, tsaErr(TSABadDataFormat, "the hash algorithm's parameters are not absent or NULL")
		}
	}
	var policyOID cryptobyte.String
	var hasPolicy, hasNonce, hasCertReq, hasExt bool
	if req.PeekASN1Tag(cbasn1.OBJECT_IDENTIFIER) {
		hasPolicy = req.ReadASN1(&policyOID, cbasn1.OBJECT_IDENTIFIER)
	}
	var nonce cryptobyte.String
	if req.PeekASN1Tag(cbasn1.INTEGER) {
		hasNonce = req.ReadASN1(&nonce, cbasn1.INTEGER)
	}
	var certReq cryptobyte.String
	if req.PeekASN1Tag(cbasn1.BOOLEAN) {
		hasCertReq = req.ReadASN1(&certReq, cbasn1.BOOLEAN)
	}
	var ext cryptobyte.String
	extTag := cbasn1.Tag(0).Constructed().ContextSpecific()
	if req.PeekASN1Tag(extTag) {
		hasExt = req.ReadASN1(&ext, extTag)
	}
	if !req.Empty() {
		return nil, tsaErr(TSABadDataFormat, "unexpected fields after messageImprint (want reqPolicy, nonce, certReq, extensions, in that order)")
	}
	if len(version) != 1 || version[0] != 1 {
		return nil, tsaErr(TSABadRequest, "version is not 1")
	}
	r := &TSARequest{Imprint: bytes.Clone(hashed)}
	if hasCertReq {
		if len(certReq) != 1 || (certReq[0] != 0 && certReq[0] != 0xff) {
			return nil, tsaErr(TSABadDataFormat, "certReq is not a DER BOOLEAN")
		}
		r.CertReq = certReq[0] == 0xff
	}
	if hasNonce {
		if !minimalInteger(nonce) {
			return nil, tsaErr(TSABadDataFormat, "the nonce is not a DER INTEGER")
		}
		if len(nonce) > MaxTSANonceSize {
			return nil, tsaErr(TSABadRequest, "the nonce is %d bytes, more than %d", len(nonce), MaxTSANonceSize)
		}
		r.Nonce = bytes.Clone(nonce)
	}
	name := oidString(oid)
	for _, a := range tsaHashes {
		if name == a.oid.String() {
			r.Hash = a.hash
		}
	}
	if r.Hash == 0 {
		if weak, ok := weakHashes[name]; ok {
			return nil, tsaErr(TSABadAlg, "%s is not accepted: use SHA-256, SHA-384 or SHA-512", weak)
		}
		return nil, tsaErr(TSABadAlg, "hash algorithm %s is not accepted: use SHA-256, SHA-384 or SHA-512", name)
	}
	if len(r.Imprint) != r.Hash.Size() {
		return nil, tsaErr(TSABadDataFormat, "the %s imprint is %d bytes, want %d", TSAHashName(r.Hash), len(r.Imprint), r.Hash.Size())
	}
	if hasPolicy && !bytes.Equal(policyOID, policy) {
		return nil, tsaErr(TSAUnacceptedPolicy, "policy %s is not this authority's (%s)", oidString(policyOID), oidString(policy))
	}
	if hasExt {
		return nil, tsaErr(TSAUnacceptedExtension, "extensions are not accepted")
	}
	return r, nil
}

// minimalInteger says whether b is the content of a DER INTEGER.
func minimalInteger(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
		return false
	}
	return true
}

// oidString is the dotted form of an OID's DER content, or "(malformed OID)".
func oidString(der []byte) string {
	var o x509.OID
	if err := o.UnmarshalBinary(der); err != nil {
		return "(malformed OID)"
	}
	return o.String()
}

// TSAPolicyDER is the DER content of the dotted OID policy.
func TSAPolicyDER(policy string) ([]byte, error) {
	o, err := x509.ParseOID(policy)
	if err != nil {
		return nil, fmt.Errorf("TSA policy %q: %v", policy, err)
	}
	return o.MarshalBinary()
}

// TSALeaf is the log leaf of an RFC 3161 token (§14.2): what the token
// says, and who asked.
type TSALeaf struct {
	Hash    crypto.Hash // SHA-256, SHA-384 or SHA-512
	Imprint []byte
	Time    time.Time
	Serial  uint64
	Policy  string // dotted OID
	Nonce   []byte // the nonce INTEGER's content; empty: none
	Via     string // TSAViaHTTP or TSAViaLibp2p
	// The requester, for Via libp2p; empty for HTTP.
	RequesterID   identity.ID
	RequesterPeer peer.ID
	ServerID      identity.ID
	ServerPeer    peer.ID
}

// Encode returns the leaf's bytes.
func (l *TSALeaf) Encode() []byte {
	var t [len(TimeLayout)]byte
	var rp []byte
	if l.RequesterPeer != "" {
		rp = []byte(l.RequesterPeer.String())
	}
	return EncodeRecord(RFC3161LeafTag,
		[]byte(TSAHashName(l.Hash)),
		l.Imprint,
		l.Time.UTC().AppendFormat(t[:0], TimeLayout),
		u64(l.Serial),
		[]byte(l.Policy),
		l.Nonce,
		[]byte(l.Via),
		[]byte(l.RequesterID),
		rp,
		[]byte(l.ServerID),
		[]byte(l.ServerPeer.String()),
	)
}

// ParseTSALeaf decodes and checks a leaf of tag RFC3161LeafTag.
func ParseTSALeaf(b []byte) (*TSALeaf, error) {
	f, err := DecodeRecord(b, RFC3161LeafTag, 11)
	if err != nil {
		return nil, err
	}
	l := &TSALeaf{Imprint: bytes.Clone(f[1]), Policy: string(f[4]), Nonce: bytes.Clone(f[5]), Via: string(f[6])}
	var ok bool
	if l.Hash, ok = tsaHashByName(string(f[0])); !ok {
		return nil, fmt.Errorf("%w: rfc3161 leaf: hash algorithm %q, want sha-256, sha-384 or sha-512", ErrMalformed, truncate(f[0]))
	}
	if len(l.Imprint) != l.Hash.Size() {
		return nil, fmt.Errorf("%w: rfc3161 leaf: the %s imprint is %d bytes", ErrMalformed, f[0], len(l.Imprint))
	}
	if l.Time, err = ParseTime(string(f[2])); err != nil {
		return nil, err
	}
	if l.Serial, err = parseU64("serial", f[3]); err != nil {
		return nil, err
	}
	if _, err := x509.ParseOID(l.Policy); err != nil {
		return nil, fmt.Errorf("%w: rfc3161 leaf: policy %q is not a dotted OID", ErrMalformed, truncate(f[4]))
	}
	if len(l.Nonce) > 0 && (!minimalInteger(l.Nonce) || len(l.Nonce) > MaxTSANonceSize) {
		return nil, fmt.Errorf("%w: rfc3161 leaf: the nonce is not a DER INTEGER's content of at most %d bytes", ErrMalformed, MaxTSANonceSize)
	}
	switch l.Via {
	case TSAViaHTTP:
		if len(f[7]) != 0 || len(f[8]) != 0 {
			return nil, fmt.Errorf("%w: rfc3161 leaf: a request over HTTP names a requester", ErrMalformed)
		}
	case TSAViaLibp2p:
		if l.RequesterID, err = identity.ParseID(string(f[7])); err != nil {
			return nil, fmt.Errorf("%w: rfc3161 leaf: requester: %v", ErrMalformed, err)
		}
		if l.RequesterPeer, err = identity.ParsePeerID(string(f[8])); err != nil {
			return nil, fmt.Errorf("%w: rfc3161 leaf: requester peer ID: %v", ErrMalformed, err)
		}
	default:
		return nil, fmt.Errorf("%w: rfc3161 leaf: via %q, want http or libp2p", ErrMalformed, truncate(f[6]))
	}
	if l.ServerID, err = identity.ParseID(string(f[9])); err != nil {
		return nil, fmt.Errorf("%w: rfc3161 leaf: server: %v", ErrMalformed, err)
	}
	if l.ServerPeer, err = identity.ParsePeerID(string(f[10])); err != nil {
		return nil, fmt.Errorf("%w: rfc3161 leaf: server peer ID: %v", ErrMalformed, err)
	}
	return l, nil
}
