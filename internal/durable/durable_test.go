package durable

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "head.json")
	for _, content := range []string{"first", "second, longer"} {
		if err := ReplaceFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("after ReplaceFile(%q): %q, %v", content, got, err)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want 0600", info.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestFailures(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such")
	if err := ReplaceFile(filepath.Join(missing, "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("ReplaceFile into a missing directory succeeded")
	}
	if err := SyncDir(missing); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}

// TestCreateNew: the first free name is taken, an existing file is never
// overwritten, and a missing folder is an error naming nothing written.
func TestCreateNew(t *testing.T) {
	base := filepath.Join(t.TempDir(), "doc")
	for n, want := range []string{base + ".receipt", base + ".1.receipt", base + ".2.receipt"} {
		got, err := CreateNew(base, ".receipt", []byte{byte(n)}, 0o644)
		if err != nil || got != want {
			t.Fatalf("write %d: %q, %v; want %q", n, got, err, want)
		}
	}
	if b, err := os.ReadFile(base + ".receipt"); err != nil || len(b) != 1 || b[0] != 0 {
		t.Fatalf("the first file was changed: %v, %v", b, err)
	}
	if _, err := CreateNew(filepath.Join(t.TempDir(), "absent", "doc"), ".tsr", nil, 0o644); err == nil {
		t.Fatal("wrote into a missing folder")
	}
}
