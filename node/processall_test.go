package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// TestProcessAll stamps and relays documents several at a time: results
// come back in the order given, one bad file fails alone, and two files
// of the same name keep both receipts.
func TestProcessAll(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	out := t.TempDir()
	r := s.requester(t, out)
	r.parallel = 4
	docs := t.TempDir()
	var paths []string
	for i := range 12 {
		paths = append(paths, writeDoc(t, docs, fmt.Sprintf("doc-%02d.txt", i), fmt.Appendf(nil, "document %d\n", i)))
	}
	paths[5] = filepath.Join(docs, "missing.txt")
	sub := filepath.Join(docs, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, writeDoc(t, sub, "doc-00.txt", []byte("same name, other bytes\n")))

	var order []string
	results := r.ProcessAll(ctxT(t), paths, time.Minute, func(res *Result) { order = append(order, res.Path) })
	if len(results) != len(paths) || len(order) != len(paths) {
		t.Fatalf("%d results, %d callbacks for %d paths", len(results), len(order), len(paths))
	}
	serials := map[uint64]bool{}
	receipts := map[string]bool{}
	for i, res := range results {
		if res.Path != paths[i] || order[i] != paths[i] {
			t.Fatalf("result %d is for %s (callback %s), want %s", i, res.Path, order[i], paths[i])
		}
		if i == 5 {
			if res.OK() || res.Err == nil || res.Receipt != nil {
				t.Fatalf("missing file: OK=%v err=%v", res.OK(), res.Err)
			}
			continue
		}
		if !res.OK() {
			t.Fatalf("%s: %v", res.Path, res.Err)
		}
		if serials[res.Receipt.Serial] || receipts[res.ReceiptPath] {
			t.Fatalf("%s: serial %d or receipt %s used twice", res.Path, res.Receipt.Serial, res.ReceiptPath)
		}
		serials[res.Receipt.Serial], receipts[res.ReceiptPath] = true, true
		want, _ := protocol.HashFile(res.Path)
		rc, err := protocol.ReadReceiptFile(res.ReceiptPath)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Verify(serverTrust(t, s.dir), want); err != nil {
			t.Fatalf("%s: receipt %s: %v", res.Path, res.ReceiptPath, err)
		}
	}
	for _, name := range []string{"doc-00.txt.receipt", "doc-00.txt.1.receipt"} {
		if !receipts[filepath.Join(out, name)] {
			t.Errorf("no receipt %s among %v", name, receipts)
		}
	}
}

// TestProcessAllCancelled: a cancelled context fails every document
// promptly instead of hanging.
func TestProcessAllCancelled(t *testing.T) {
	s := startSwarm(t, transports[0].listen)
	r := s.requester(t, t.TempDir())
	docs := t.TempDir()
	var paths []string
	for i := range 5 {
		paths = append(paths, writeDoc(t, docs, fmt.Sprintf("doc-%d", i), []byte{byte(i)}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	for _, res := range r.ProcessAll(ctx, paths, 0, nil) {
		if res.OK() || res.Err == nil {
			t.Fatalf("%s succeeded under a cancelled context", res.Path)
		}
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancelled ProcessAll took %v", d)
	}
}
