package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRequesterRetriesAcrossServerRestart: a document asked while the
// server is down is stamped once it is back (same address, same log),
// after more than one try, with no duplicate warning (nothing was sent);
// a server that stays down exhausts the tries, and the error counts them.
func TestRequesterRetriesAcrossServerRestart(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			s := startSwarm(t, tr.listen)
			data := t.TempDir()
			srv, err := StartServer(testIdentity(t, "server", s.dir), []string{tr.listen}, data)
			if err != nil {
				t.Fatal(err)
			}
			addr := addrOf(srv)
			r, err := NewRequester(testIdentity(t, "1000", s.dir), RequesterConfig{
				Trust:    serverTrust(t, s.dir),
				ServerID: "server", ServerAddr: addr,
				VerifierID: "2000", VerifierAddr: addrOf(s.verifier),
				OutDir: t.TempDir(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Connect(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			docs := t.TempDir()
			if res := r.Process(ctxT(t), writeDoc(t, docs, "a", []byte("a"))); !res.OK() || res.StampTries != 1 {
				t.Fatalf("before the restart: %+v", res)
			}
			if err := srv.Shutdown(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			// Restart once the requester has failed a try.
			failed := make(chan struct{}, 100)
			ctx := context.WithValue(ctxT(t), retryHookKey{}, func(string, error) { failed <- struct{}{} })
			done := make(chan *Result, 1)
			go func() { done <- r.Process(ctx, writeDoc(t, docs, "b", []byte("b"))) }()
			<-failed
			srv2, err := StartServer(testIdentity(t, "server", s.dir), []string{addr}, data)
			if err != nil {
				t.Fatal(err)
			}
			defer srv2.Close()
			res := <-done
			if !res.OK() || res.StampTries < 2 || res.Warning != "" || res.Receipt.Serial != 1 {
				t.Fatalf("across the restart: %+v (err %v)", res, res.Err)
			}
			if _, err := os.Stat(res.ReceiptPath); err != nil {
				t.Fatal(err)
			}

			// Down for good: 3 tries, then an error that says so.
			srv2.Close()
			r.maxTries = 3
			res = r.Process(ctxT(t), writeDoc(t, docs, "c", []byte("c")))
			if res.Err == nil || res.StampTries != 3 || !strings.Contains(res.Err.Error(), "after 3 tries") {
				t.Fatalf("server down: %+v (err %v)", res, res.Err)
			}
			// And a timeout says so, not "stream reset".
			r.maxTries = 0
			tctx, cancel := WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			res = r.Process(tctx, writeDoc(t, docs, "d", []byte("d")))
			var te *TimeoutError
			if !errors.As(res.Err, &te) || !strings.Contains(res.Err.Error(), "timed out after 300ms stamping "+filepath.Join(docs, "d")) {
				t.Fatalf("timeout: %v", res.Err)
			}
		})
	}
}
