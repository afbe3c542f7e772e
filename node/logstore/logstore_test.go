package logstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/node/authority"
	"github.com/tsnode/tsnode/protocol"
)

func serverTrust(t testing.TB) *protocol.Trust {
	return testnet.Trust(t, testkeys.Directory(t, "server", "outsider"))
}

// serve opens dir as a server does, makes n stamps (in batches of 10,
// each answered with a guarded head), checks that the tree of every
// head that answers a stamp is already guarded on disk, closes, and
// returns the serials issued.
func serve(t *testing.T, dir string, n int) []uint64 {
	t.Helper()
	lg, store, err := Open(dir, "server", serverTrust(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	a, err := authority.New(lg, authority.SignerFor(testkeys.Private(t, "server")), testnet.Entry(t, "server"), authority.WithHeadStore(store))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	req := testnet.Entry(t, "1000")
	var serials []uint64
	for i := 0; i < n; i += 10 {
		var fs []authority.Future
		for j := i; j < min(i+10, n); j++ {
			h := make([]byte, protocol.HashSize)
			h[0], h[1] = byte(j), byte(j>>8)
			fs = append(fs, a.Add(context.Background(), authority.Entry{Requester: req, Hash: h, Nonce: bytes.Repeat([]byte{byte(j)}, protocol.NonceSize)}))
		}
		for _, f := range fs {
			st, err := f()
			if err != nil {
				t.Fatal(err)
			}
			g, err := ReadGuard(dir, "server")
			if err != nil {
				t.Fatal(err)
			}
			if g == nil || g.Size < st.Head.Head.Size {
				t.Fatalf("a reply carries a head of size %d, the guard holds only %+v", st.Head.Head.Size, g)
			}
			serials = append(serials, st.Statement.Serial)
		}
	}
	return serials
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Every way log.db can lose or change what a saved head covers is
// refused with a message that names both files and says what to do;
// restoring the backup then continues the serials where they stopped.
func TestOpenRefusesALogThatLostTheHead(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	pageSize := func(b []byte) int { return int(binary.NativeEndian.Uint32(b[16+8:])) }
	rootPage := func(b []byte) int { // of the newest meta page
		m := 16
		if binary.NativeEndian.Uint64(b[pageSize(b)+16+48:]) > binary.NativeEndian.Uint64(b[16+48:]) {
			m += pageSize(b)
		}
		return int(binary.NativeEndian.Uint64(b[m+16:]))
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir, path, older string)
		want   []string
	}{
		{"missing", func(t *testing.T, _, path, _ string) { os.Remove(path) }, []string{"is missing", "size 60", "restore log.db"}},
		{"zero-length", func(t *testing.T, _, path, _ string) { os.Truncate(path, 0) }, []string{"empty (0 bytes)", "restore log.db"}},
		{"truncated to half", func(t *testing.T, _, path, _ string) {
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()/2)
		}, []string{"truncated"}},
		// The server's batches, hence the file's layout, depend on timing:
		// these two damage the page of the root bucket, always in use (a
		// free page may hold anything). internal/merklelog tests damage
		// at fixed offsets of a fixed layout.
		{"4 KiB of random bytes", func(t *testing.T, _, path, _ string) {
			b, _ := os.ReadFile(path)
			at := rootPage(b) * pageSize(b)
			for i := range 4096 {
				b[at+i] = byte(rng.Uint32())
			}
			os.WriteFile(path, b, 0o600)
		}, []string{"corrupt"}},
		{"64 flipped bytes", func(t *testing.T, _, path, _ string) {
			b, _ := os.ReadFile(path)
			at := rootPage(b) * pageSize(b)
			for i := range 64 {
				b[at+16+i] ^= 0x5a
			}
			os.WriteFile(path, b, 0o600)
		}, []string{"corrupt"}},
		{"newest meta page damaged", func(t *testing.T, _, path, _ string) {
			b, _ := os.ReadFile(path)
			ps := pageSize(b)
			newest := 0
			if binary.NativeEndian.Uint64(b[ps+16+48:]) > binary.NativeEndian.Uint64(b[16+48:]) {
				newest = ps
			}
			b[newest+16+40] ^= 1
			os.WriteFile(path, b, 0o600)
		}, []string{"meta page", "fall back"}},
		{"rolled back to an older copy", func(t *testing.T, _, path, older string) {
			copyFile(t, older, path)
		}, []string{"holds 30 stamps", "published at size 60", "lost stamps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			logPath := filepath.Join(dir, merklelog.FileName)
			older, backup := filepath.Join(t.TempDir(), "older"), filepath.Join(t.TempDir(), "backup")
			serve(t, dir, 30)
			copyFile(t, logPath, older)
			serve(t, dir, 30)
			copyFile(t, logPath, backup)
			tt.damage(t, dir, logPath, older)
			_, _, err := Open(dir, "server", serverTrust(t))
			if err == nil {
				t.Fatal("a log that lost or changed published stamps was opened")
			}
			for _, w := range append(tt.want, logPath) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := Check(dir, "server", serverTrust(t)); err == nil {
				t.Error("Check accepted it")
			}
			// Nothing was re-issued: once restored, serials go on.
			copyFile(t, backup, logPath)
			if s := serve(t, dir, 1); s[0] != 60 {
				t.Fatalf("after the restore the next serial is %d, want 60", s[0])
			}
		})
	}
}

// A log whose tree differs from the saved head at its size (another
// log, or a forged leaf re-hashed throughout) is refused too.
func TestOpenRefusesAnotherLog(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	serve(t, dir, 20)
	lg, err := merklelog.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := lg.Append(func(uint64, time.Time) ([][]byte, error) { return make([][]byte, 10), nil }, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	lg.Close()
	copyFile(t, filepath.Join(other, merklelog.FileName), filepath.Join(dir, merklelog.FileName))
	_, _, err = Open(dir, "server", serverTrust(t))
	if err == nil || !strings.Contains(err.Error(), "was changed") || !strings.Contains(err.Error(), "at size 20") {
		t.Fatalf("another log of 30 stamps under a head of 20: %v", err)
	}
}

// The head file must be this server's, signed with its key.
func TestOpenRefusesAForeignHead(t *testing.T) {
	dir := t.TempDir()
	serve(t, dir, 1)
	sth, err := protocol.ReadHeadFile(filepath.Join(dir, HeadFileName))
	if err != nil {
		t.Fatal(err)
	}
	forged := *sth
	forged.Signature = append([]byte{}, sth.Signature...)
	forged.Signature[10] ^= 1
	if err := SaveHead(dir, &forged); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, "server", serverTrust(t)); !errors.Is(err, protocol.ErrBadSignature) || !strings.Contains(err.Error(), HeadFileName) {
		t.Fatalf("a head with a bad signature: %v", err)
	}
	other, err := protocol.SignTreeHead(testkeys.Private(t, "outsider"), &protocol.TreeHead{ServerID: "outsider", ServerPeer: testnet.Entry(t, "outsider").PeerID, Size: 1, Root: sth.Head.Root, Time: sth.Head.Time})
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveHead(dir, other); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, "server", serverTrust(t)); err == nil || !strings.Contains(err.Error(), "not of this server") {
		t.Fatalf("a head of another server: %v", err)
	}
}

// A new log is made only in an empty or absent directory, or by Init in
// one that holds neither a log nor a head file.
func TestCreateOnlyWhereNothingWasLost(t *testing.T) {
	tr := serverTrust(t)
	absent := filepath.Join(t.TempDir(), "new")
	lg, _, err := Open(absent, "server", tr)
	if err != nil {
		t.Fatalf("absent dir: %v", err)
	}
	lg.Close()

	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "notes.txt"), []byte("x"), 0o600)
	if _, _, err := Open(busy, "server", tr); err == nil || !strings.Contains(err.Error(), "--init") || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("non-empty dir without a log: %v", err)
	}
	if err := Init(busy); err != nil {
		t.Fatal(err)
	}
	if s := serve(t, busy, 1); s[0] != 0 {
		t.Fatalf("first serial %d", s[0])
	}
	if err := Init(busy); err != nil { // a log is there: nothing to do
		t.Fatal(err)
	}
	os.Remove(filepath.Join(busy, merklelog.FileName))
	if err := Init(busy); err == nil || !strings.Contains(err.Error(), HeadFileName) {
		t.Fatalf("--init next to a head file: %v", err)
	}
}

// Check reports the log and its head, and refuses while a server holds
// the log.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	serve(t, dir, 25)
	rep, err := Check(dir, "server", serverTrust(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 25 || rep.Head == nil || rep.Head.Head.Size != 25 || rep.Head.Head.Root != rep.Root {
		t.Fatalf("report %+v", rep)
	}
	lg, _, err := Open(dir, "server", serverTrust(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	if _, err := Check(dir, identity.ServerID, serverTrust(t)); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Check while a server holds the log: %v", err)
	}
}
