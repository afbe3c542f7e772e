package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	// The child is this very executable, so it must print exactly what
	// this process reads from its own build information.
	var want bytes.Buffer
	readBuildVersion(debug.ReadBuildInfo()).write(&want)
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		res := tsnode(t, nil, args...)
		if res.code != 0 || res.stdout != want.String() || res.stderr != "" {
			t.Errorf("tsnode %v: want exit 0 and\n%s\ngot %v", args, want.String(), res)
		}
	}
	res := tsnode(t, nil, "version", "extra")
	if res.code != exitUsage {
		t.Fatalf("version with an argument: want exit %d\n%v", exitUsage, res)
	}
	mustContain(t, "version with an argument", res, `version takes no arguments, got ["extra"]`)
	if strings.Count(res.stderr, "\n") > 2 {
		t.Errorf("a version usage error prints the whole usage:\n%v", res)
	}
}

func TestReadBuildVersion(t *testing.T) {
	show := func(v buildVersion) string {
		var b strings.Builder
		v.write(&b)
		return b.String()
	}
	bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	got := show(readBuildVersion(bi, true))
	for _, w := range []string{"tsnode v1.2.3\n", "revision  0123456789abcdef0123456789abcdef01234567+dirty\n",
		"vcs time  2026-01-02T03:04:05Z\n", "go        go1.99.1 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("stamped build: lacks %q\n%s", w, got)
		}
	}
	bi.Settings[3].Value = "false"
	if got := show(readBuildVersion(bi, true)); strings.Contains(got, "dirty") {
		t.Errorf("clean build says dirty:\n%s", got)
	}
	// What `go test` and -buildvcs=false give: no VCS settings at all.
	got = show(readBuildVersion(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true))
	for _, w := range []string{"tsnode (devel)\n", "revision  (unknown: built without VCS information)\n", "vcs time  (unknown)\n", runtime.Version()} {
		if !strings.Contains(got, w) {
			t.Errorf("unstamped build: lacks %q\n%s", w, got)
		}
	}
	if got := show(readBuildVersion(nil, false)); !strings.Contains(got, "tsnode (devel)\n") || !strings.Contains(got, runtime.Version()) {
		t.Errorf("no build info:\n%s", got)
	}
}

// TestBuiltBinaryVersion builds tsnode as a user does, from a git
// checkout, and checks that it reports the checkout's commit. Go stamps
// VCS information only where .git is a directory (not in a `git
// worktree`, whose .git is a file), so the build runs in a shared clone
// of HEAD with the working tree's files copied over it.
func TestBuiltBinaryVersion(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not on PATH")
	}
	// go test puts its own GOROOT/bin first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("git", "-C", root, "rev-parse", "--verify", "HEAD").Run(); err != nil {
		t.Skipf("%s is not a git checkout with a commit: %v", root, err)
	}
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	git(t, root, "clone", "--quiet", "--shared", "--no-checkout", root, src)
	git(t, src, "checkout", "--quiet", "--detach", strings.TrimSpace(git(t, root, "rev-parse", "HEAD")))
	overlayWorkingTree(t, root, src)
	head := strings.TrimSpace(git(t, src, "rev-parse", "HEAD"))
	dirty := strings.TrimSpace(git(t, src, "status", "--porcelain")) != ""

	bin := filepath.Join(tmp, "tsnode")
	// -buildvcs=true overrides a GOFLAGS=-buildvcs=false; -trimpath keeps
	// the build cache shared with earlier builds from other directories.
	build := exec.Command(goBin, "build", "-buildvcs=true", "-trimpath", "-o", bin, "./cmd/tsnode")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", src, err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	t.Logf("%s --version (HEAD %s, dirty %v):\n%s", bin, head, dirty, out)
	wantRev := "revision  " + head
	if dirty {
		wantRev += "+dirty"
	}
	for _, w := range []string{wantRev + "\n", "go        " + runtime.Version()} {
		if !strings.Contains(string(out), w) {
			t.Errorf("built binary's version lacks %q\n%s", w, out)
		}
	}
	if strings.Contains(string(out), "unknown") {
		t.Errorf("a binary built from a checkout reports an unknown field:\n%s", out)
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// overlayWorkingTree copies root's tracked and untracked (not ignored)
// files over dst and removes those deleted in root, so that dst holds
// root's working tree.
func overlayWorkingTree(t *testing.T, root, dst string) {
	t.Helper()
	list := git(t, root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, name := range strings.Split(strings.TrimRight(list, "\x00"), "\x00") {
		from, to := filepath.Join(root, name), filepath.Join(dst, name)
		data, err := os.ReadFile(from)
		if os.IsNotExist(err) {
			_ = os.Remove(to)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}
