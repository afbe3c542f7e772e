package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverStartTimeout bounds how long a spawned server may take to print
// its address (it decrypts its key first: PBKDF2 takes a moment).
const serverStartTimeout = 60 * time.Second

// serverStopTimeout is how long a server gets to stop after SIGTERM
// before it is killed.
const serverStopTimeout = 10 * time.Second

// CheckServerBin refuses a server binary that is not an executable file.
func CheckServerBin(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("server binary %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("server binary %s: not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("server binary %s: not executable", path)
	}
	return nil
}

// serverProc is a tsnode server the bench started as its own process.
type serverProc struct {
	cmd  *exec.Cmd
	addr string
	// tsaURL is the RFC 3161 HTTP address it printed (--http), if asked.
	tsaURL  string
	dataDir string
	stderr  *tailBuffer
	exited  chan struct{} // closed once the process has been waited for
	waitErr error
	once    sync.Once
}

// The lines of `tsnode --role server` (cmd/tsnode/role.go) that say where
// it listens: the RFC 3161 HTTP address (with --http) comes first.
const (
	listenLinePrefix = "server listening on "
	tsaLinePrefix    = "server RFC 3161 on "
)

// serverAddrs is what a server printed: its first listen multiaddr and
// its RFC 3161 URL (empty without --http).
type serverAddrs struct{ addr, tsaURL string }

// startServer spawns `exe [prefix...] --role server ...` with a fresh
// data directory, serving RFC 3161 as flow needs (--http on a port of
// 127.0.0.1 the system picks, or --tsa), and returns once it printed its
// addresses.
func startServer(ctx context.Context, cfg *Config, passFile, flow string) (*serverProc, error) {
	dataDir, err := os.MkdirTemp("", "tsnode-bench-data-")
	if err != nil {
		return nil, fmt.Errorf("failed to make the server's data directory: %w", err)
	}
	args := append(append([]string{}, cfg.ServerArgs...),
		"--role", "server", "--id", string(cfg.ServerID), "--keys", cfg.Keys,
		"--passphrase-file", passFile, "--data", dataDir,
		"--listen", cfg.Listen, "--log-level", "error")
	switch flow {
	case FlowRFC3161:
		args = append(args, "--http", "127.0.0.1:0")
	case FlowRFC3161P2P:
		args = append(args, "--tsa")
	}
	cmd := exec.Command(cfg.ServerExe, args...)
	cmd.Env = append(os.Environ(), cfg.ServerEnv...)
	cmd.SysProcAttr = serverProcAttr()
	p := &serverProc{cmd: cmd, dataDir: dataDir, stderr: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		return nil, fmt.Errorf("failed to start the server %s: %w", cfg.ServerExe, err)
	}
	addrs := make(chan serverAddrs, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var got serverAddrs
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, tsaLinePrefix); ok && got.tsaURL == "" {
				got.tsaURL, _, _ = strings.Cut(u, " ")
			}
			if a, ok := strings.CutPrefix(line, listenLinePrefix); ok && !sent {
				got.addr = strings.TrimSpace(a)
				addrs <- got
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case got := <-addrs:
		p.addr, p.tsaURL = got.addr, got.tsaURL
		if flow == FlowRFC3161 && p.tsaURL == "" {
			p.stop()
			return nil, fmt.Errorf("the server printed no %q line before listening: is %s a tsnode with --http?", tsaLinePrefix, cfg.ServerExe)
		}
		return p, nil
	case <-p.exited:
		p.stop()
		return nil, fmt.Errorf("the server exited before listening (%v): %s", p.waitErr, p.stderr.String())
	case <-timer.C:
		p.stop()
		return nil, fmt.Errorf("the server printed no address within %s: %s", serverStartTimeout, p.stderr.String())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

func (p *serverProc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the server is still running.
func (p *serverProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to stop (SIGTERM), kills it if it does not within
// serverStopTimeout, and removes its data directory. It is safe to call
// more than once.
func (p *serverProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(serverStopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		os.RemoveAll(p.dataDir)
	})
}

// exitError describes why a server that should be running is not.
func (p *serverProc) exitError() error {
	return fmt.Errorf("the server exited during the run (%v): %s", p.waitErr, p.stderr.String())
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output on stderr)"
	}
	return s
}
