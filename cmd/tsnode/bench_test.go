package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchUsageErrors(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "tsnode-old")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const srv = "/ip4/127.0.0.1/tcp/1"
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"rate and inflight", []string{"--rate", "100", "--inflight", "8"}, []string{"--rate and --inflight are mutually exclusive"}},
		{"rate zero", []string{"--rate", "0"}, []string{"--rate 0: want more than 0"}},
		{"rate negative", []string{"--rate", "-5"}, []string{"--rate -5"}},
		{"rate over the cap", []string{"--rate", "1e9"}, []string{"--rate 1e+09"}},
		{"schedule without rate", []string{"--schedule", "fixed"}, []string{"--schedule", "give --rate"}},
		{"seed without rate", []string{"--seed", "3"}, []string{"give --rate"}},
		{"max-outstanding without rate", []string{"--max-outstanding", "10"}, []string{"give --rate"}},
		{"unknown schedule", []string{"--rate", "10", "--schedule", "bursty"}, []string{`--schedule "bursty"`}},
		{"max-outstanding zero", []string{"--rate", "10", "--max-outstanding", "0"}, []string{"--max-outstanding 0"}},
		{"server-bin missing", []string{"--server-bin", "/nonexistent/tsnode"}, []string{"--server-bin", "/nonexistent/tsnode", "no such file"}},
		{"server-bin not executable", []string{"--server-bin", notExec}, []string{"--server-bin", "not executable"}},
		{"server-bin with server", []string{"--server", srv, "--server-bin", notExec}, []string{"--server-bin is for the server the bench starts"}},
		{"server-pid without server", []string{"--server-pid", "1"}, []string{"--server-pid is for a server given with --server"}},
		{"server-pid not a process", []string{"--server", srv, "--server-pid", "2147483647"}, []string{"--server-pid", "2147483647", "no such process"}},
		{"server-pid zero", []string{"--server", srv, "--server-pid", "0"}, []string{"--server-pid", "want a process id"}},
		{"tsa-chain without tsa-url", []string{"--tsa-chain", "chain.pem"}, []string{"--tsa-chain is for --tsa-url"}},
		{"tsa-url with server", []string{"--tsa-url", "http://127.0.0.1:1/", "--server", srv}, []string{"--tsa-url loads a server that is running"}},
		{"tsa-url with server-bin", []string{"--tsa-url", "http://127.0.0.1:1/", "--server-bin", notExec}, []string{"not with --server or --server-bin"}},
		{"tsa-url not http", []string{"--tsa-url", "ftp://127.0.0.1/"}, []string{`TSA URL "ftp://127.0.0.1/"`}},
		{"tsa-url with a stamp flow", []string{"--tsa-url", "http://127.0.0.1:1/", "--flows", "session"}, []string{"flow session with a TSA URL"}},
		{"http flow with server", []string{"--server", srv, "--flows", "rfc3161"}, []string{"give the running server's HTTP address as the TSA URL"}},
		{"unknown flow", []string{"--flows", "rfc3162"}, []string{`flow "rfc3162"`, "rfc3161-p2p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tsnode(t, nil, append([]string{"bench"}, tc.args...)...)
			if res.code != exitUsage {
				t.Fatalf("want exit %d\n%v", exitUsage, res)
			}
			mustContain(t, tc.name, res, tc.want...)
		})
	}
}

// A short open-loop run of the session flow against a server spawned
// from --server-bin (this test binary, acting as tsnode).
func TestBenchOpenLoop(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	res := tsnode(t, nil, "bench", "--keys", keys, "--passphrase-file", pass, "--ids", "1000,2000",
		"--flows", "session", "--rate", "200", "--schedule", "fixed", "--seed", "5", "--count", "40",
		"--server-bin", exe, "--json", out, "--quiet")
	if res.code != 0 {
		t.Fatalf("bench:\n%v", res)
	}
	mustContain(t, "bench table", res, "offered/s", "CPU µs/stamp", "session: open loop, 200/s offered (fixed, seed 5): 40 scheduled, 40 sent, 0 dropped")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Mode      string `json:"mode"`
		ServerBin string `json:"server_bin"`
		Flows     []struct {
			Stamps     uint64   `json:"stamps"`
			Offered    *float64 `json:"offered_per_second"`
			CPUPerStmp *float64 `json:"server_cpu_us_per_stamp"`
			Open       *struct {
				Sent    uint64 `json:"sent"`
				Dropped uint64 `json:"dropped"`
			} `json:"open_loop"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "open" || rep.ServerBin != exe || len(rep.Flows) != 1 {
		t.Fatalf("report:\n%s", b)
	}
	f := rep.Flows[0]
	if f.Stamps != 40 || f.Offered == nil || *f.Offered != 200 || f.CPUPerStmp == nil || f.Open == nil || f.Open.Sent != 40 || f.Open.Dropped != 0 {
		t.Errorf("flow:\n%s", b)
	}
}

// A short run of both RFC 3161 flows against servers spawned from
// --server-bin (this test binary, acting as tsnode: its real --http and
// the line that says where it listens), every token checked.
func TestBenchRFC3161(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bench.json")
	res := tsnode(t, nil, "bench", "--keys", keys, "--passphrase-file", pass, "--ids", "1000",
		"--flows", "rfc3161,rfc3161-p2p", "--inflight", "4", "--count", "20",
		"--server-bin", exe, "--json", out, "--quiet")
	if res.code != 0 {
		t.Fatalf("bench:\n%v", res)
	}
	mustContain(t, "bench table", res, "tokens/s", "CPU µs/token", "every token checked")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Flows []struct {
			Flow    string   `json:"flow"`
			URL     string   `json:"tsa_url"`
			Tokens  uint64   `json:"tokens"`
			Errors  uint64   `json:"errors"`
			PerSec  float64  `json:"tokens_per_second"`
			CPUPerT *float64 `json:"server_cpu_us_per_token"`
		} `json:"flows"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Flows) != 2 {
		t.Fatalf("report:\n%s", b)
	}
	for _, f := range rep.Flows {
		if f.Tokens != 20 || f.Errors != 0 || f.PerSec <= 0 || f.CPUPerT == nil {
			t.Errorf("%s: %+v", f.Flow, f)
		}
	}
	if u := rep.Flows[0].URL; !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("rfc3161 asked %q, want the server's --http on 127.0.0.1", u)
	}
}
