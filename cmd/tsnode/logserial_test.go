package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogSerial: tsnode log --serial proves a stamp's leaf under the
// server's latest head, as text and as JSON; a serial the log does not
// hold is refused by the server, and --serial with --from is a usage
// error.
func TestLogSerial(t *testing.T) {
	t.Parallel()
	keys, pass := keysDir(t, "server", "1000")
	srv := startDaemon(t, "server", keys, pass, "--data", filepath.Join(t.TempDir(), "data"))
	doc := writeFile(t, filepath.Join(t.TempDir(), "doc.txt"), "a document")
	if res := tsnode(t, nil, "stamp", "--keys", keys, "--passphrase-file", pass, "--server", srv.addrs["tcp"], doc); res.code != 0 {
		t.Fatalf("stamp:\n%v", res)
	}
	args := []string{"log", "--keys", keys, "--passphrase-file", pass, "--server", srv.addrs["tcp"]}
	res := tsnode(t, nil, append(args, "--serial", "0")...)
	if res.code != 0 || !strings.Contains(res.stdout, "serial 0 is in the log: a stamp leaf") || !strings.Contains(res.stdout, "inclusion proof") {
		t.Fatalf("log --serial 0:\n%v", res)
	}
	res = tsnode(t, nil, append(args, "--serial", "0", "--json")...)
	var out logResult
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || res.code != 0 {
		t.Fatalf("log --serial 0 --json: %v\n%v", err, res)
	}
	if out.Serial == nil || *out.Serial != 0 || out.LeafKind != "stamp" || out.Included == nil || !*out.Included || out.Size != 1 || len(out.LeafHash) != 64 {
		t.Fatalf("log --serial 0 --json: %+v", out)
	}
	res = tsnode(t, nil, append(args, "--serial", "5")...)
	if res.code != exitFailed || !strings.Contains(res.stderr, "refused") {
		t.Fatalf("log --serial 5 of a log of 1:\n%v", res)
	}
	res = tsnode(t, nil, append(args, "--serial", "0", "--from", doc+".receipt")...)
	if res.code != exitUsage || !strings.Contains(res.stderr, "--serial and --from") {
		t.Fatalf("--serial with --from:\n%v", res)
	}
}
