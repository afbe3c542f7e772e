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
