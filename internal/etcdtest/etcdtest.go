//go:build unix

// Package etcdtest starts real etcd clusters for tests: each member is a
// process of the etcd binary (Debian's etcd-server, 3.4 or later), on
// free loopback ports, with its data in the test's temporary directory;
// the test can kill, pause and restart members, and every process still
// running is killed, by its PID, at cleanup. Where no etcd binary can be
// had, Start skips the test, saying why. Only tests import it.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// BinaryEnv names the etcd binary to run; unset, "etcd" is looked up in
// PATH.
const BinaryEnv = "TSNODE_ETCD"

// minMinor is the oldest etcd 3.x release the tests run on: 3.4, the one
// Debian ships, which client/v3 v3.7 speaks to.
const minMinor = 4

// startTimeout bounds how long a cluster, or a restarted member, may take
// to answer its health check.
const startTimeout = 60 * time.Second

var versionLine = regexp.MustCompile(`(?m)^etcd Version: (\d+)\.(\d+)\.(\d+)`)

// Binary is the etcd binary the tests run and its version, or why there
// is none usable.
func Binary() (path, version string, err error) {
	name, where := os.Getenv(BinaryEnv), "named by "+BinaryEnv
	if name == "" {
		name, where = "etcd", "in PATH (or name one with "+BinaryEnv+")"
	}
	path, err = exec.LookPath(name)
	if err != nil {
		return "", "", fmt.Errorf("no etcd binary %s: %w", where, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("%s --version: %w (%s)", path, err, strings.TrimSpace(string(out)))
	}
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("%s --version printed no \"etcd Version: x.y.z\" line: %q", path, out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	version = fmt.Sprintf("%s.%s.%s", m[1], m[2], m[3])
	if major != 3 || minor < minMinor {
		return "", "", fmt.Errorf("%s is etcd %s; the tests need 3.%d or a later 3.x", path, version, minMinor)
	}
	return path, version, nil
}

// Cluster is a running etcd cluster of member processes.
type Cluster struct {
	Members []*Member
	Version string // of the binary
}

// Member is one etcd process of a cluster.
type Member struct {
	Name      string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string
	Dir       string // its data directory
	LogPath   string // its stdout and stderr

	bin  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd's process has been waited for
}

// Start starts a cluster of n members and waits until each answers its
// health check; they are killed at cleanup. It skips the test when no
// etcd binary can be had.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, version, err := Binary()
	if err != nil {
		t.Skipf("etcdtest: %v; install one (Debian: apt-get install etcd-server) to run this test", err)
	}
	// Free ports are found by listening on port 0 and closing: another
	// process may take one meanwhile, so a start that fails is tried
	// again on fresh ports.
	var lastErr error
	for range 3 {
		c, err := start(t, bin, n)
		if err == nil {
			c.Version = version
			return c
		}
		lastErr = err
	}
	t.Fatalf("etcdtest: starting %d etcd %s members: %v", n, version, lastErr)
	return nil
}

func start(t testing.TB, bin string, n int) (*Cluster, error) {
	root, err := os.MkdirTemp(t.TempDir(), "etcd-")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			bin:       bin,
		}
		m.Dir = filepath.Join(root, m.Name)
		m.LogPath = filepath.Join(root, m.Name+".log")
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	token := filepath.Base(root) // distinct per cluster: members of another never join
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", m.Dir, "--logger", "zap",
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
		}
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			if err := m.Kill(); err != nil {
				t.Errorf("etcdtest: %v", err)
			}
		}
	})
	for _, m := range c.Members {
		if err := m.spawn(); err != nil {
			c.killAll()
			return nil, err
		}
	}
	for _, m := range c.Members {
		if err := m.waitHealthy(); err != nil {
			c.killAll()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) killAll() {
	for _, m := range c.Members {
		_ = m.Kill()
	}
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientURL
	}
	return eps
}

// Client is a client/v3 client of every member, closed at cleanup.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcdtest: client of %v: %v", c.Endpoints(), err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// spawn starts the member's process.
func (m *Member) spawn() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return fmt.Errorf("etcd member %s is running already (pid %d)", m.Name, m.cmd.Process.Pid)
	}
	out, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = memberEnv()
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd member %s: %w", m.Name, err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(m.exited)
	return nil
}

// memberEnv is the test's environment without ETCD_* variables (etcd
// reads its flags from them too), and with the one etcd 3.4 asks for to
// run on an architecture other than amd64.
func memberEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	if runtime.GOARCH != "amd64" {
		env = append(env, "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	}
	return env
}

// waitHealthy waits until the member answers /health with true, or its
// process exits, or startTimeout passes.
func (m *Member) waitHealthy() error {
	m.mu.Lock()
	exited := m.exited
	m.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(m.ClientURL + "/health")
		if err == nil {
			var body [256]byte
			k, _ := resp.Body.Read(body[:])
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body[:k]), `"health":"true"`) {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("etcd member %s exited while starting: %s", m.Name, m.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd member %s not healthy within %v: %s", m.Name, startTimeout, m.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTail is the end of the member's log, for an error message.
func (m *Member) logTail() string {
	b, err := os.ReadFile(m.LogPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf("last lines of %s:\n%s", m.LogPath, b)
}

// PID is the member's process id, 0 when it is not running.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill kills the member's process (SIGKILL, by its PID) and waits for it
// to exit; its data directory stays, for Restart. Killing a member that
// is not running does nothing.
func (m *Member) Kill() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	if err := m.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing etcd member %s (pid %d): %w", m.Name, m.cmd.Process.Pid, err)
	}
	<-m.exited
	m.cmd = nil
	return nil
}

// Pause stops the member's process (SIGSTOP): it keeps its ports and
// state but answers nothing, as a machine that hangs; Resume continues it.
func (m *Member) Pause() error { return m.signal(syscall.SIGSTOP) }

// Resume continues a paused member (SIGCONT).
func (m *Member) Resume() error { return m.signal(syscall.SIGCONT) }

func (m *Member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("etcd member %s is not running", m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling %v to etcd member %s (pid %d): %w", sig, m.Name, m.cmd.Process.Pid, err)
	}
	return nil
}

// Restart starts a killed member again on its data directory and ports,
// and waits for its health check, which needs a quorum of the cluster.
func (m *Member) Restart() error {
	for i, a := range m.args {
		if a == "--initial-cluster-state" {
			m.args[i+1] = "existing" // it is a member already
		}
	}
	if err := m.spawn(); err != nil {
		return err
	}
	return m.waitHealthy()
}

// freePorts are n distinct loopback TCP ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
