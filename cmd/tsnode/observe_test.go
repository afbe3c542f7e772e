package main

import (
	"bufio"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

var metricsURL = regexp.MustCompile(`(?m)^(server|verifier) metrics on (http://\S+)/metrics$`)

// metricsBase is the base URL a daemon printed for --metrics.
func metricsBase(t *testing.T, d *daemon) string {
	t.Helper()
	m := metricsURL.FindStringSubmatch(d.output())
	if m == nil {
		t.Fatalf("no metrics address printed\n%s", d.output())
	}
	return m[2]
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricValue reads one sample, by its full name with labels, from a
// /metrics scrape.
func metricValue(t *testing.T, base, sample string) float64 {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sample, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", sample)
	return 0
}

// TestMetricsOfRunningDaemons scrapes a server and a verifier started
// with --metrics on a port picked by the system, stamps two documents and
// checks that the counters moved by exactly that.
func TestMetricsOfRunningDaemons(t *testing.T) {
	keys, pass := keysDir(t, "server", "1000", "2000")
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--metrics", "127.0.0.1:0")
	verifier := startDaemon(t, "verifier", keys, pass, "--metrics", "127.0.0.1:0")
	sURL, vURL := metricsBase(t, server), metricsBase(t, verifier)
	for _, base := range []string{sURL, vURL} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := httpGet(t, base+path); code != 200 || body != "ok\n" {
				t.Fatalf("%s%s: %d %q", base, path, code, body)
			}
		}
	}
	samples := []struct {
		base, name string
		want       float64
	}{
		{sURL, `tsnode_stamps_issued_total{flow="session"}`, 2},
		{sURL, `tsnode_stamps_issued_total{flow="oneshot"}`, 0},
		{sURL, `tsnode_sessions_opened_total`, 1},
		{sURL, `tsnode_log_stamps`, 2},
		{vURL, `tsnode_verdicts_total{code="valid"}`, 2},
		{vURL, `tsnode_relays_total{outcome="verdict"}`, 2},
	}
	before := make([]float64, len(samples))
	for i, s := range samples {
		before[i] = metricValue(t, s.base, s.name)
	}
	docs := t.TempDir()
	res := tsnode(t, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass,
		"--server", server.addrs["tcp"], "--verifier", verifier.addrs["tcp"], "--out", t.TempDir(),
		"--file", writeFile(t, filepath.Join(docs, "a"), "a"), "--file", writeFile(t, filepath.Join(docs, "b"), "b"))
	if res.code != 0 {
		t.Fatalf("requester:\n%v", res)
	}
	for i, s := range samples {
		if got := metricValue(t, s.base, s.name) - before[i]; got != s.want {
			t.Errorf("%s moved by %v, want %v", s.name, got, s.want)
		}
	}
	if v := metricValue(t, sURL, `tsnode_tree_heads_signed_total`); v < 1 {
		t.Errorf("tsnode_tree_heads_signed_total %v after two stamps", v)
	}
	if v := metricValue(t, sURL, `libp2p_rcmgr_limit{resource="streams_inbound",scope="system"}`); v <= 0 {
		t.Errorf("libp2p's resource-manager limit: %v", v)
	}
}

// TestMetricsAddressTaken: a taken --metrics address stops the start with
// one line naming it; --metrics is refused for a requester.
func TestMetricsAddressTaken(t *testing.T) {
	keys, pass := keysDir(t, "server")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	res := tsnode(t, nil, "--role", "server", "--keys", keys, "--passphrase-file", pass, "--data", t.TempDir(),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--metrics", addr)
	if res.code != exitFailed || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 ||
		!strings.Contains(res.stderr, "--metrics: metrics address "+addr+": cannot listen: address already in use") {
		t.Fatalf("want one line naming %s:\n%v", addr, res)
	}
	res = tsnode(t, nil, "--role", "requester", "--server", "/ip4/127.0.0.1/tcp/1", "--verifier", "/ip4/127.0.0.1/tcp/2",
		"--file", "f", "--metrics", "127.0.0.1:0")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--metrics is for --role server, --role verifier") {
		t.Fatalf("requester with --metrics:\n%v", res)
	}
}

// secretsOf is what no output may hold: the passphrase, PEM armour and
// body lines of the private keys, and the decrypted keys' bytes.
func secretsOf(t *testing.T, keys string, ids ...identity.ID) []string {
	secrets := []string{testkeys.Passphrase, "PRIVATE KEY", "-----BEGIN"}
	for _, id := range ids {
		pem, err := os.ReadFile(identity.PrivateKeyPath(keys, id))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(pem), "\n") {
			if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
				secrets = append(secrets, line)
			}
		}
		k := testkeys.Private(t, id)
		der := x509.MarshalPKCS1PrivateKey(k)
		secrets = append(secrets, k.D.String()[:40], fmt.Sprintf("%x", k.D.Bytes()[:20]),
			base64.StdEncoding.EncodeToString(der[len(der)/2:len(der)/2+30]), fmt.Sprintf("%x", k.Primes[0].Bytes()[:20]))
	}
	return secrets
}

// TestLogsHoldNoSecretsAndJSONIsJSON runs a server, a verifier and a
// requester at debug with a passphrase file and JSON logs (the server
// through GOLOG_LOG_FMT, the others through --log-format): every stderr
// line is a JSON object, the session and verdict lines are there, and no
// output holds the passphrase or key material.
func TestLogsHoldNoSecretsAndJSONIsJSON(t *testing.T) {
	t.Setenv("GOLOG_LOG_FMT", "json")
	ids := []identity.ID{"server", "1000", "2000"}
	keys, pass := keysDir(t, ids...)
	server := startDaemon(t, "server", keys, pass, "--data", t.TempDir(), "--log-level", "debug")
	verifier := startDaemon(t, "verifier", keys, pass, "--log-level", "debug", "--log-format", "json")
	docs := t.TempDir()
	res := tsnode(t, nil, "--role", "requester", "--keys", keys, "--passphrase-file", pass, "--log-level", "debug", "--log-format", "json",
		"--server", server.addrs["tcp"], "--verifier", verifier.addrs["tcp"], "--out", t.TempDir(),
		"--file", writeFile(t, filepath.Join(docs, "a"), "a"), "--file", writeFile(t, filepath.Join(docs, "b"), "b"))
	if res.code != 0 {
		t.Fatalf("requester:\n%v", res)
	}
	server.stop(t)
	verifier.stop(t)

	secrets := secretsOf(t, keys, ids...)
	for name, out := range map[string]struct{ stdout, stderr string }{
		"server": {server.stdoutText(), server.stderrText()}, "verifier": {verifier.stdoutText(), verifier.stderrText()},
		"requester": {res.stdout, res.stderr},
	} {
		for _, s := range secrets {
			if strings.Contains(out.stdout+out.stderr, s) {
				t.Errorf("%s output holds a secret (%.12s...)", name, s)
			}
		}
		for _, line := range strings.Split(strings.TrimSpace(out.stderr), "\n") {
			if line == "" {
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Errorf("%s: stderr line is not JSON: %q", name, line)
			}
		}
	}
	for who, want := range map[string][]string{
		server.stderrText():   {`"msg":"session opened"`, `"msg":"session closed"`, `"stamps":2`, `"requester":"1000"`, `"msg":"stamped"`, `"flow":"session"`},
		verifier.stderrText(): {`"msg":"verdict"`, `"verdict":"valid"`, `"bytes":1`},
	} {
		for _, w := range want {
			if !strings.Contains(who, w) {
				t.Errorf("log lacks %s:\n%s", w, who)
			}
		}
	}
}

// TestLogFormatAndLevelFromEnvAndFlags: --log-format wins over
// GOLOG_LOG_FMT, the final error follows the format, and a bad
// GOLOG_LOG_LEVEL or --log-format is a usage error naming it.
func TestLogFormatAndLevelFromEnvAndFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nokeys")
	args := []string{"--role", "server", "--keys", missing, "--listen", "/ip4/127.0.0.1/tcp/0"}
	res := tsnode(t, []string{"GOLOG_LOG_FMT=json"}, append(args, "--log-format", "text")...)
	if res.code != exitFailed || !strings.HasPrefix(res.stderr, "tsnode: ") {
		t.Fatalf("text wins over GOLOG_LOG_FMT=json:\n%v", res)
	}
	res = tsnode(t, []string{"GOLOG_LOG_FMT=json"}, args...)
	var obj struct{ Level, Msg string }
	if res.code != exitFailed || json.Unmarshal([]byte(res.stderr), &obj) != nil || obj.Level != "error" || !strings.Contains(obj.Msg, "nokeys") {
		t.Fatalf("GOLOG_LOG_FMT=json: want the error as one JSON line:\n%v", res)
	}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"GOLOG_LOG_LEVEL=loud"}, args, `GOLOG_LOG_LEVEL "loud": bad level "loud"`},
		{[]string{"GOLOG_LOG_LEVEL=warn,swarm2=chatty"}, args, `bad level "chatty"`},
		{[]string{"GOLOG_LOG_FMT=yaml"}, args, `GOLOG_LOG_FMT "yaml"`},
		{nil, append(args, "--log-format", "xml"), `--log-format "xml": want text or json`},
		{nil, append(args, "--log-level", "loud"), `--log-level "loud"`},
	} {
		if res := tsnode(t, tc.env, tc.args...); res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v %v: want usage error %q\n%v", tc.env, tc.args, tc.want, res)
		}
	}
}

func (d *daemon) stdoutText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stdout.String()
}

func (d *daemon) stderrText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}
