package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jsonLines parses every line of stdout as one JSON object; a line that
// does not parse fails the test.
func jsonLines(t *testing.T, what string, res result) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
		if line == "" && res.stdout == "" {
			break
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%s: stdout line %q is not a JSON object: %v\n%v", what, line, err, res)
		}
		out = append(out, m)
	}
	return out
}

// TestStampThenRelay: tsnode stamp writes receipts without a verifier;
// tsnode relay sends one later, twice (idempotent); both with --json,
// whose every stdout line parses, on success and on failure.
func TestStampThenRelay(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	verifier := startDaemon(t, "verifier", keys, pass, "--store", t.TempDir())
	docs, out := t.TempDir(), t.TempDir()
	a := writeFile(t, filepath.Join(docs, "a.txt"), "a\n")
	b := writeFile(t, filepath.Join(docs, "b.txt"), "b\n")
	base := []string{"--keys", keys, "--passphrase-file", pass}

	res := tsnode(t, nil, append([]string{"stamp", "--server", server.addrs["tcp"], "--out", out, "--json", a, b}, base...)...)
	lines := jsonLines(t, "stamp", res)
	if res.code != 0 || len(lines) != 2 {
		t.Fatalf("stamp --json:\n%v", res)
	}
	for i, doc := range []string{a, b} {
		l := lines[i]
		if l["file"] != doc || l["ok"] != true || l["server_id"] != "server" || l["receipt"] != filepath.Join(out, filepath.Base(doc)+".receipt") || l["verdict"] != nil || l["stamp_tries"] != 1.0 {
			t.Errorf("stamp line %d: %v", i, l)
		}
	}
	mustContain(t, "stamp summary on stderr", res, "2 of 2 documents stamped")

	// --role requester without --verifier stamps only, too (text).
	res = tsnode(t, nil, append([]string{"--role", "requester", "--server", server.addrs["quic-v1"], "--out", out, "--file", a}, base...)...)
	if res.code != 0 || strings.Contains(res.stdout, "verifier") {
		t.Fatalf("requester without --verifier:\n%v", res)
	}
	mustContain(t, "requester without --verifier", res, "1 of 1 documents stamped\n", "a.txt.1.receipt")

	relay := append([]string{"relay", "--verifier", verifier.addrs["tcp"], "--json", "--receipt", filepath.Join(out, "a.txt.receipt"), a}, base...)
	for range 2 {
		res = tsnode(t, nil, relay...)
		lines = jsonLines(t, "relay", res)
		if res.code != 0 || len(lines) != 1 || lines[0]["verdict"] != "valid" || lines[0]["verifier"] != "2000" || lines[0]["ok"] != true || lines[0]["relay_tries"] != 1.0 {
			t.Fatalf("relay --json:\n%v", res)
		}
	}
	// b's receipt with a: the verifier says no; still one whole object.
	res = tsnode(t, nil, append([]string{"relay", "--verifier", verifier.addrs["tcp"], "--json", "--receipt", filepath.Join(out, "b.txt.receipt"), a}, base...)...)
	lines = jsonLines(t, "relay wrong receipt", res)
	if res.code != exitFailed || len(lines) != 1 || lines[0]["ok"] != false || lines[0]["verdict"] == "valid" || lines[0]["error"] == nil {
		t.Fatalf("relay of another document's receipt:\n%v", res)
	}
	// No receipt file: nothing on stdout, the error on stderr.
	res = tsnode(t, nil, append([]string{"relay", "--verifier", verifier.addrs["tcp"], "--json", "--receipt", filepath.Join(out, "none.receipt"), a}, base...)...)
	if res.code != exitFailed || res.stdout != "" || !strings.Contains(res.stderr, "--receipt") {
		t.Fatalf("relay without a receipt file:\n%v", res)
	}
	// A missing document among others: a failed object, the rest fine.
	res = tsnode(t, nil, append([]string{"stamp", "--server", server.addrs["tcp"], "--out", out, "--json", filepath.Join(docs, "gone"), a}, base...)...)
	lines = jsonLines(t, "stamp missing", res)
	if res.code != exitFailed || len(lines) != 2 || lines[0]["ok"] != false || !strings.Contains(fmt.Sprint(lines[0]["error"]), "cannot read document") || lines[1]["ok"] != true {
		t.Fatalf("stamp with a missing document:\n%v", res)
	}
	// Server unreachable: nothing on stdout, the try count on stderr.
	res = tsnode(t, nil, append([]string{"stamp", "--server", "/ip4/127.0.0.1/tcp/1", "--json", "--timeout", "1s", a}, base...)...)
	if res.code != exitFailed || res.stdout != "" || !strings.Contains(res.stderr, "timed out after 1s connecting (") {
		t.Fatalf("stamp, server down:\n%v", res)
	}
	// verify and id --json.
	res = tsnode(t, nil, "verify", "--keys", keys, "--json", "--receipt", filepath.Join(out, "a.txt.receipt"), a)
	if l := jsonLines(t, "verify", res); res.code != 0 || len(l) != 1 || l[0]["ok"] != true || l[0]["server_id"] != "server" || l[0]["serial"] == nil {
		t.Fatalf("verify --json:\n%v", res)
	}
	res = tsnode(t, nil, "verify", "--keys", keys, "--json", "--receipt", filepath.Join(out, "b.txt.receipt"), a)
	if l := jsonLines(t, "verify invalid", res); res.code != exitFailed || len(l) != 1 || l[0]["ok"] != false || l[0]["error"] == nil {
		t.Fatalf("verify --json, wrong document:\n%v", res)
	}
	res = tsnode(t, nil, "id", "--keys", keys, "--json")
	if l := jsonLines(t, "id", res); res.code != 0 || len(l) != 3 || l[0]["id"] == nil || l[0]["peer_id"] == nil {
		t.Fatalf("id --json:\n%v", res)
	}
}

// TestRequesterWaitsForServerRestart: a requester started while the
// server is down retries (and says so in its log) until the server is
// back on the same address and log, then stamps every document.
func TestRequesterWaitsForServerRestart(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	data := t.TempDir()
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))
	first := startDaemon(t, "server", keys, pass, "--data", data, "--listen", listen)
	first.stop(t)

	docs := t.TempDir()
	var args []string
	for i := range 5 {
		args = append(args, writeFile(t, filepath.Join(docs, fmt.Sprint(i)), fmt.Sprint(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := tsnodeCmd(t, ctx, nil, append([]string{"stamp", "--keys", keys, "--passphrase-file", pass, "--json", "--server", listen + "/p2p/" + peerOf(t, keys, "server")}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "retrying") {
			break
		}
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Fatalf("the requester did not retry:\n%s", log.String())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	startDaemon(t, "server", keys, pass, "--data", data, "--listen", listen)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("requester: %v\n%s", err, stdout.String())
	}
	lines := jsonLines(t, "stamp across a restart", result{stdout: stdout.String()})
	if len(lines) != 5 {
		t.Fatalf("%d results:\n%s", len(lines), stdout.String())
	}
	for _, l := range lines {
		if l["ok"] != true {
			t.Errorf("not stamped: %v", l)
		}
	}
}

// TestProgressOffTerminal: off a terminal, a long relay prints progress
// lines on stderr (the interval shortened for the test), and stdout
// stays pure JSON.
func TestProgressOffTerminal(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir())
	verifier := startDaemon(t, "verifier", keys, pass)
	doc := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(doc, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := tsnode(t, []string{progressIntervalEnv + "=1ms"}, "--role", "requester", "--keys", keys, "--passphrase-file", pass, "--json",
		"--server", server.addrs["tcp"], "--verifier", verifier.addrs["tcp"], "--file", doc)
	if l := jsonLines(t, "progress", res); res.code != 0 || len(l) != 1 || l[0]["verdict"] != "valid" {
		t.Fatalf("relay of 64 MiB:\n%v", res)
	}
	for _, want := range []string{doc + ": hashing ", doc + ": relaying ", " of 64.0 MiB (", "/s, ETA ", doc + ": relaying 64.0 MiB in "} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q (run took %v)\n%s", want, time.Since(start), res.stderr)
		}
	}
	if !strings.Contains(verifier.output(), "relay started") || !strings.Contains(verifier.output(), "relay ended") {
		t.Errorf("verifier did not log the relay's start and end:\n%s", verifier.output())
	}
}

// freePort is a TCP port of loopback that was free a moment ago, for a
// daemon that must come back on the same address.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
