package tsa

import (
	"context"
	"crypto"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// Tokens of a running TSA pass Trust.CheckTSAToken, with their own
// certificates or (without certReq) with the published chain, for each
// signing key; a trust that does not name the server refuses them.
func TestTokensVerify(t *testing.T) {
	doc := []byte("a document\n")
	digest := func(h crypto.Hash) ([]byte, error) { w := h.New(); w.Write(doc); return w.Sum(nil), nil }
	for _, mode := range []string{KeyECDSA, KeyIdentity} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, mode)
			trust, err := protocol.NewTrust(testkeys.Directory(t, "server", "1000"), nil, "server")
			if err != nil {
				t.Fatal(err)
			}
			chain, err := os.ReadFile(ChainPath(f.keys, "server"))
			if err != nil {
				t.Fatal(err)
			}
			published, err := protocol.ParseCertsPEM(chain)
			if err != nil {
				t.Fatal(err)
			}
			for _, certReq := range []bool{true, false} {
				q, err := timestamp.CreateRequest(strings.NewReader(string(doc)), &timestamp.RequestOptions{Hash: crypto.SHA384, Certificates: certReq})
				if err != nil {
					t.Fatal(err)
				}
				code, resp := f.post(t, "/", ContentTypeQuery, q)
				if code != http.StatusOK {
					t.Fatalf("HTTP %d", code)
				}
				der, err := protocol.ParseTSAResponse(resp)
				if err != nil {
					t.Fatal(err)
				}
				var extra = published
				if certReq {
					extra = nil
				}
				tok, err := trust.CheckTSAToken(der, extra, digest)
				if err != nil {
					t.Fatalf("certReq %v: %v", certReq, err)
				}
				leaf, err := f.log.Leaf(tok.Serial)
				if err != nil {
					t.Fatal(err)
				}
				l, err := protocol.ParseTSALeaf(leaf)
				if err != nil || !l.Time.Equal(tok.Time) || tok.ServerID != "server" || tok.Hash != crypto.SHA384 {
					t.Fatalf("token %+v, leaf %+v (%v)", tok, l, err)
				}
			}
			other, err := protocol.NewTrust(testkeys.Directory(t, "server", "1000"), nil, "1000")
			if err != nil {
				t.Fatal(err)
			}
			resp := f.svc.Handle(context.Background(), request(t, doc), protocol.TSAViaHTTP, testnet.Entry(t, "1000"))
			der, err := protocol.ParseTSAResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.CheckTSAToken(der, nil, digest); !errors.Is(err, protocol.ErrUntrustedSigner) {
				t.Fatalf("trusting only 1000: %v", err)
			}
		})
	}
}
