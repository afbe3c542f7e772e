package node

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/protocol"
)

// A server restarted on the same data directory continues its log:
// serials go on, times do not go back, receipts from before the restart
// still verify, and the new log provably extends the old one.
func TestServerRestartContinuesLog(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startSwarm(t, tr.listen)
			dataDir := t.TempDir()
			var receipts []*protocol.Receipt
			var hashes [][]byte
			stampSome := func(n int) {
				t.Helper()
				srv, err := StartServer(testIdentity(t, "server", s.dir), []string{tr.listen}, dataDir)
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				r, err := NewRequester(testIdentity(t, "1000", s.dir), RequesterConfig{
					Trust:    serverTrust(t, s.dir),
					ServerID: "server", ServerAddr: addrOf(srv),
					VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
				})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if err := r.Connect(ctxT(t)); err != nil {
					t.Fatal(err)
				}
				for range n {
					h := sha256.Sum256(fmt.Appendf(nil, "document %d", len(receipts)))
					rc, err := r.stampOnce(ctxT(t), h[:])
					if err != nil {
						t.Fatal(err)
					}
					receipts, hashes = append(receipts, rc), append(hashes, h[:])
				}
				// The log protocol proves that this log extends the head
				// of the first receipt.
				first, err := receipts[0].TreeHeadOf()
				if err != nil {
					t.Fatal(err)
				}
				c := logsync.NewClient(r.Host(), r.stamp.Server, r.trust)
				latest, proof, err := c.Fetch(ctxT(t), first.Head.Size, 0)
				if err != nil {
					t.Fatal(err)
				}
				if latest.Head.Size != uint64(len(receipts)) {
					t.Fatalf("latest head of size %d after %d stamps", latest.Head.Size, len(receipts))
				}
				if err := protocol.NewConsistency(first, latest, proof).Verify(serverTrust(t, s.dir)); err != nil {
					t.Fatal(err)
				}
			}
			stampSome(3)
			stampSome(2) // after a restart
			var prev time.Time
			for i, rc := range receipts {
				st, err := rc.Verify(serverTrust(t, s.dir), hashes[i])
				if err != nil {
					t.Fatalf("receipt %d: %v", i, err)
				}
				if rc.Format != protocol.ReceiptFormatV2 || st.Serial != uint64(i) {
					t.Fatalf("receipt %d: %s, serial %d", i, rc.Format, st.Serial)
				}
				if !st.Time.After(prev) {
					t.Fatalf("receipt %d: time %s not after %s", i, protocol.FormatTime(st.Time), protocol.FormatTime(prev))
				}
				prev = st.Time
			}
		})
	}
}
