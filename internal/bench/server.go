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
	cmd     *exec.Cmd
	addr    string
	dataDir string
	stderr  *tailBuffer
	exited  chan struct{} // closed once the process has been waited for
	waitErr error
	once    sync.Once
}

// startServer spawns `exe [prefix...] --role server ...` with a fresh
// data directory and returns once it printed its listen address.
func startServer(ctx context.Context, cfg *Config, passFile string) (*serverProc, error) {
	dataDir, err := os.MkdirTemp("", "tsnode-bench-data-")
	if err != nil {
		return nil, fmt.Errorf("failed to make the server's data directory: %w", err)
	}
	args := append(append([]string{}, cfg.ServerArgs...),
		"--role", "server", "--id", string(cfg.ServerID), "--keys", cfg.Keys,
		"--passphrase-file", passFile, "--data", dataDir,
		"--listen", cfg.Listen, "--log-level", "error")
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
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "server listening on "); ok && !sent {
				addrs <- strings.TrimSpace(a)
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
	case p.addr = <-addrs:
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
