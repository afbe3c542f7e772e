package logstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tsnode/tsnode/internal/merklelog"
)

// rollBack serves 30 stamps in dir, keeps a copy of log.db, serves 30
// more and returns the copy: a log.db rolled back by 30 published stamps.
func rollBack(t *testing.T, dir string) string {
	t.Helper()
	older := filepath.Join(t.TempDir(), "older")
	serve(t, dir, 30)
	copyFile(t, filepath.Join(dir, merklelog.FileName), older)
	serve(t, dir, 30)
	return older
}

func wantOpenErr(t *testing.T, dir string, want ...string) {
	t.Helper()
	_, _, err := Open(dir, "server", serverTrust(t))
	if err == nil {
		t.Fatalf("opened; want an error saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// The guard alone protects the log: with head.json gone (or behind), a
// rolled-back log.db is refused, naming the guard.
func TestGuardAloneRefusesARollBack(t *testing.T) {
	dir := t.TempDir()
	older := rollBack(t, dir)
	os.Remove(filepath.Join(dir, HeadFileName))
	copyFile(t, older, filepath.Join(dir, merklelog.FileName))
	wantOpenErr(t, dir, "holds 30 stamps", filepath.Join(dir, GuardFileName), "published at size 60", "lost stamps")
	os.Remove(filepath.Join(dir, merklelog.FileName))
	wantOpenErr(t, dir, "is missing", filepath.Join(dir, GuardFileName), "size 60")
	if err := Init(dir); err == nil || !strings.Contains(err.Error(), GuardFileName) {
		t.Fatalf("--init next to a guard: %v", err)
	}
}

// A data directory made before guards (head.json, no guard) opens, gets
// a guard of its head, and stays protected.
func TestGuardMigration(t *testing.T) {
	dir := t.TempDir()
	older := rollBack(t, dir)
	guard := filepath.Join(dir, GuardFileName)
	os.Remove(guard)
	lg, _, err := Open(dir, "server", serverTrust(t))
	if err != nil {
		t.Fatalf("a directory without a guard: %v", err)
	}
	lg.Close()
	g, err := ReadGuard(dir, "server")
	if err != nil || g == nil || g.Size != 60 {
		t.Fatalf("guard after migration: %+v, %v; want size 60", g, err)
	}
	os.Remove(filepath.Join(dir, HeadFileName))
	copyFile(t, older, filepath.Join(dir, merklelog.FileName))
	wantOpenErr(t, dir, "holds 30 stamps", guard, "lost stamps")

	// Without a guard, head.json alone still protects, as before.
	dir = t.TempDir()
	older = rollBack(t, dir)
	os.Remove(filepath.Join(dir, GuardFileName))
	copyFile(t, older, filepath.Join(dir, merklelog.FileName))
	wantOpenErr(t, dir, "holds 30 stamps", filepath.Join(dir, HeadFileName), "lost stamps")
}

// newestSlot is the offset of the guard file's newer slot.
func newestSlot(t *testing.T, b []byte) int {
	t.Helper()
	var at int
	var seq uint64
	for i := range guardSlots {
		g, err := decodeGuard("server", b[i*guardSlot:(i+1)*guardSlot])
		if err == nil && g.Seq >= seq {
			at, seq = i*guardSlot, g.Seq
		}
	}
	return at
}

// One torn slot (a power cut during its write) leaves the other slot's
// guard; a damaged file, or one of another server, is refused naming it.
func TestGuardDamage(t *testing.T) {
	dir := t.TempDir()
	serve(t, dir, 25)
	serve(t, dir, 5) // both slots written
	path := filepath.Join(dir, GuardFileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damage := func(f func(b []byte) []byte) {
		t.Helper()
		b := f(append([]byte{}, good...))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	at := newestSlot(t, good)
	damage(func(b []byte) []byte { b[at+60] ^= 1; return b })
	rep, err := Check(dir, "server", serverTrust(t))
	if err != nil {
		t.Fatalf("one torn slot: %v", err)
	}
	if g := rep.Guard; g == nil || !g.Torn || g.Size >= 30 {
		t.Fatalf("one torn slot: guard %+v, want the older one (torn)", g)
	}
	if s := serve(t, dir, 1); s[0] != 30 {
		t.Fatalf("after a torn guard the next serial is %d, want 30", s[0])
	}
	good, _ = os.ReadFile(path)
	for _, tt := range []struct {
		name string
		f    func(b []byte) []byte
		want string
	}{
		{"both slots damaged", func(b []byte) []byte { b[100] ^= 1; b[guardSlot+100] ^= 1; return b }, "no guard that checks"},
		{"cut short", func(b []byte) []byte { return b[:100] }, "is 100 bytes"},
		{"empty", func(b []byte) []byte { return nil }, "is 0 bytes"},
		{"another server's", func(b []byte) []byte {
			copy(b, encodeGuard("outsider", &Guard{Seq: 99, Size: 1}))
			return b
		}, "another server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			damage(tt.f)
			wantOpenErr(t, dir, path, tt.want)
			if _, err := Check(dir, "server", serverTrust(t)); err == nil {
				t.Error("Check accepted it")
			}
		})
	}
	damage(func(b []byte) []byte { return b })
	out := filepath.Join(t.TempDir(), "backup")
	if _, err := BackupStopped(dir, out); err != nil {
		t.Fatal(err)
	}
	if g, err := ReadGuard(out, "server"); err != nil || g == nil || g.Size != 31 {
		t.Fatalf("the backup's guard: %+v, %v; want size 31", g, err)
	}
}
