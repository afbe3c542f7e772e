package main

// End-to-end tests of the tsnode command: the test binary re-executes
// itself as tsnode (TestMain), so every test runs real processes with real
// libp2p hosts on 127.0.0.1, real key files and real receipts, under the
// race detector. Keys are the TEST-ONLY keys of internal/testkeys.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
)

// beTsnode makes the test binary act as tsnode.
const beTsnode = "TSNODE_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(beTsnode) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// cmdTimeout bounds every tsnode run, so a hang fails instead of stalling.
const cmdTimeout = 90 * time.Second

// tsnodeCmd prepares tsnode with args. env adds variables; the
// passphrase variable is cleared unless env sets it.
func tsnodeCmd(t *testing.T, ctx context.Context, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(envWithout(os.Environ(), passphraseEnv+"="), beTsnode+"=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

func envWithout(env []string, prefix string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// tsnode runs tsnode to completion.
func tsnode(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := tsnodeCmd(t, ctx, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("tsnode %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("tsnode %v did not finish within %v\n%v", args, cmdTimeout, res)
	}
	return res
}

// keysDir lays out a keys directory holding the test keys of ids, and a
// 0600 passphrase file next to it.
func keysDir(t *testing.T, ids ...identity.ID) (keys, passFile string) {
	t.Helper()
	base := t.TempDir()
	keys = filepath.Join(base, "keys")
	testkeys.WriteKeysDir(t, keys, ids...)
	passFile = filepath.Join(base, "passphrase")
	if err := os.WriteFile(passFile, []byte(testkeys.Passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keys, passFile
}

// daemon is a running server or verifier process.
type daemon struct {
	cmd    *exec.Cmd
	addrs  map[string]string // "tcp", "quic-v1" -> full multiaddr
	mu     sync.Mutex
	stdout strings.Builder
	stderr bytes.Buffer
	exited chan struct{}
	err    error
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stdout.String() + d.stderr.String()
}

// startDaemon starts a server or verifier on 127.0.0.1 (TCP and QUIC)
// and waits for its addresses. It is stopped with SIGTERM at cleanup.
func startDaemon(t *testing.T, role, keys, passFile string, extra ...string) *daemon {
	t.Helper()
	return startDaemonOn(t, role, keys, passFile, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, extra...)
}

// startDaemonOn is startDaemon listening on listen (TCP and QUIC
// multiaddrs) instead of on ports picked by the system: a restarted
// process gets its old ports back.
func startDaemonOn(t *testing.T, role, keys, passFile string, listen []string, extra ...string) *daemon {
	t.Helper()
	args := []string{"--role", role, "--keys", keys, "--passphrase-file", passFile}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	args = append(args, extra...)
	d := &daemon{addrs: map[string]string{}, exited: make(chan struct{})}
	d.cmd = tsnodeCmd(t, context.Background(), nil, args...)
	d.cmd.Stderr = &lockedWriter{mu: &d.mu, w: &d.stderr}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		prefix := role + " listening on "
		announced := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.stdout.WriteString(line + "\n")
			if a, ok := strings.CutPrefix(line, prefix); ok {
				for _, tr := range []string{"tcp", "quic-v1"} {
					if strings.Contains(a, "/"+tr+"/") && d.addrs[tr] == "" {
						d.addrs[tr] = a
					}
				}
				if len(d.addrs) == 2 && !announced {
					close(ready)
					announced = true
				}
			}
			d.mu.Unlock()
		}
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		// A stopped process cannot drain: let it go on first.
		_ = d.cmd.Process.Signal(syscall.SIGCONT)
		d.stop(t)
	})
	select {
	case <-ready:
	case <-d.exited:
		t.Fatalf("%s exited before it listened: %v\n%s", role, d.err, d.output())
	case <-time.After(cmdTimeout):
		t.Fatalf("%s did not print its addresses\n%s", role, d.output())
	}
	return d
}

// stop sends SIGTERM and checks that the daemon stops cleanly: exit 0,
// saying it stopped.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("daemon did not stop within 20 s of SIGTERM\n%s", d.output())
		return
	}
	if d.err != nil {
		t.Errorf("daemon exited with %v after SIGTERM\n%s", d.err, d.output())
	}
	if !strings.Contains(d.output(), " stopped") {
		t.Errorf("daemon did not say it stopped\n%s", d.output())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustContain(t *testing.T, what string, res result, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(res.stdout+res.stderr, w) {
			t.Errorf("%s: output lacks %q\n%v", what, w, res)
		}
	}
}
