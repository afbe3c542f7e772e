package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/protocol"
)

// The two attacks of issue 7, against a real verifier over TCP and QUIC:
// a receipt the requester signed itself, and a receipt of a stock server
// run under an enrolled id that is not an authority. Both keys are in the
// verifier's directory; neither is an authority it trusts.
func TestVerifierRefusesUntrustedSigners(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startSwarm(t, tr.listen)
			doc := []byte("a contract, backdated\n")
			hash := sha256.Sum256(doc)

			// 1. Requester 1000 signs its own statement dated 2001.
			r := s.requester(t, t.TempDir())
			self := r.id.Self
			st := &protocol.Statement{
				HashAlgorithm: protocol.HashAlgorithm, DocumentHash: hash[:],
				Time: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), Serial: 7,
				RequesterID: self.ID, RequesterPeer: self.PeerID, ServerID: self.ID, ServerPeer: self.PeerID,
				Nonce: make([]byte, protocol.NonceSize),
			}
			sig, err := protocol.Sign(testkeys.Private(t, "1000"), st.Encode())
			if err != nil {
				t.Fatal(err)
			}
			v, err := r.relay.Relay(ctxT(t), protocol.NewReceipt(st, sig), bytes.NewReader(doc), int64(len(doc)))
			if err != nil {
				t.Fatal(err)
			}
			if v.Code != protocol.VerdictUntrustedSigner || !strings.Contains(v.Message, "1000 is not a trusted authority") {
				t.Fatalf("self-signed receipt: verdict %v", v)
			}

			// 2. A stock server under the id "outsider", which the
			// requester chose to trust; the verifier did not.
			all := testkeys.Directory(t, "server", "1000", "2000", "outsider")
			rogue, err := StartServer(testIdentity(t, "outsider", all), []string{tr.listen}, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rogue.Close() })
			cfg := RequesterConfig{
				Trust:    serverTrust(t, all),
				ServerID: "outsider", ServerAddr: addrOf(rogue),
				VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
				OutDir: t.TempDir(),
			}
			// With the default trust the requester does not even ask.
			if _, err := NewRequester(testIdentity(t, "1000", all), cfg); !errors.Is(err, protocol.ErrUntrustedSigner) {
				t.Fatalf("requester asking an untrusted server: %v, want ErrUntrustedSigner", err)
			}
			trustRogue, err := protocol.NewTrust(all, nil, "outsider")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Trust = trustRogue
			r2, err := NewRequester(testIdentity(t, "1000", all), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r2.Close() })
			if err := r2.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			res := r2.Process(ctxT(t), writeDoc(t, t.TempDir(), "doc.txt", doc))
			if res.Receipt == nil || res.Receipt.ServerID != "outsider" {
				t.Fatalf("the rogue server did not stamp: %v", res.Err)
			}
			if res.OK() || res.Verdict == nil || res.Verdict.Code != protocol.VerdictUntrustedSigner ||
				!strings.Contains(res.Verdict.Message, "outsider is not a trusted authority") {
				t.Fatalf("receipt of server outsider: verdict %v, err %v", res.Verdict, res.Err)
			}
			if stored, _ := filepath.Glob(filepath.Join(s.store, "*")); len(stored) != 0 {
				t.Errorf("the verifier stored %v", stored)
			}
		})
	}
}
