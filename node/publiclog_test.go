package node

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/node/logsync"
	"github.com/tsnode/tsnode/node/stamp"
	"github.com/tsnode/tsnode/protocol"
)

func startServerOn(t *testing.T, dir *identity.Directory, dataDir string, publicLog bool) *Service {
	t.Helper()
	id := testIdentity(t, "server", dir)
	id.PublicLog = publicLog
	srv, err := StartServer(id, []string{LoopbackListen}, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// auditLog asks srv for its latest head as an auditor with an ephemeral
// identity, knowing only the public keys.
func auditLog(t *testing.T, srv *Service) (*protocol.SignedTreeHead, error) {
	t.Helper()
	all := everyone(t)
	id, err := EphemeralIdentity(all, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Connect(ctxT(t), peer.AddrInfo{ID: srv.Host.ID(), Addrs: srv.Host.Addrs()}); err != nil {
		return nil, err
	}
	head, _, err := logsync.NewClient(h, entryOf(t, all, "server"), serverTrust(t, all)).Fetch(ctxT(t), 0, 0)
	return head, err
}

// With --public-log, an auditor outside the directory reads the log (an
// empty one as empty, then its signed head), and a stranger can open no
// other protocol: no stamp, no session. Without it, the auditor is
// refused.
func TestPublicLog(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	srv := startServerOn(t, dir, t.TempDir(), true)
	if _, err := auditLog(t, srv); !errors.Is(err, logsync.ErrEmptyLog) {
		t.Fatalf("auditor on an empty public log: %v, want ErrEmptyLog", err)
	}
	if err := oneShot(t, clientHost(t, "1000"), "1000", srv); err != nil {
		t.Fatal(err)
	}
	head, err := auditLog(t, srv)
	if err != nil || head.Head.Size != 1 {
		t.Fatalf("auditor after one stamp: %v, %v", head, err)
	}

	stranger := clientHost(t, "outsider")
	if err := oneShot(t, stranger, "outsider", srv); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Fatalf("a stranger's one-shot stamp on a public-log server: %v, want a reset stream", err)
	}
	all := everyone(t)
	if _, err := stamp.OpenSession(ctxT(t), stranger, testkeys.Private(t, "outsider"), entryOf(t, all, "outsider"), entryOf(t, all, "server"), serverTrust(t, all), nil); err == nil {
		t.Fatal("a stranger opened a stamp session on a public-log server")
	}
	if srv.LogSize() != 1 {
		t.Fatalf("log size %d after the stranger's attempts, want 1", srv.LogSize())
	}

	closed := startServerOn(t, dir, t.TempDir(), false)
	if _, err := auditLog(t, closed); err == nil || errors.Is(err, logsync.ErrEmptyLog) {
		t.Fatalf("auditor on a server without --public-log: %v, want a refusal", err)
	}
}

// A backup of a running server's data, taken while it stamps, passes
// the full check; a server started on it continues the serials.
func TestBackupOfRunningServer(t *testing.T) {
	dir := testkeys.Directory(t, "server", "1000")
	data := t.TempDir()
	srv := startServerOn(t, dir, data, false)
	h := clientHost(t, "1000")
	for range 5 {
		if err := oneShot(t, h, "1000", srv); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "backup")
	n, err := srv.Backup(out)
	if err != nil || n != 5 {
		t.Fatalf("backup: %d stamps, %v", n, err)
	}
	if _, err := srv.Backup(out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup into an existing folder: %v", err)
	}
	if _, err := logstore.BackupStopped(data, filepath.Join(t.TempDir(), "b2")); err == nil || !strings.Contains(err.Error(), "SIGUSR1") {
		t.Fatalf("offline backup of a running server's data: %v, want in use (SIGUSR1)", err)
	}
	self, err := protocol.NewTrust(dir, nil, "server")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := logstore.Check(out, "server", self)
	if err != nil || rep.Size != 5 || rep.Head == nil {
		t.Fatalf("check of the backup: %+v, %v", rep, err)
	}
	srv.Close()

	restored := startServerOn(t, dir, out, false)
	if restored.LogSize() != 5 {
		t.Fatalf("restored log holds %d stamps, want 5", restored.LogSize())
	}
	all := everyone(t)
	c := &stamp.OneShotClient{Host: clientHost(t, "1000"), Key: testkeys.Private(t, "1000"), Self: entryOf(t, all, "1000"), Server: entryOf(t, all, "server"), Trust: serverTrust(t, all)}
	if err := c.Host.Connect(ctxT(t), peer.AddrInfo{ID: restored.Host.ID(), Addrs: restored.Host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(fmt.Append(nil, "after the restore"))
	rc, err := c.Stamp(ctxT(t), hash[:])
	if err != nil || rc.Serial != 5 {
		t.Fatalf("stamp on the restored server: %+v, %v, want serial 5", rc, err)
	}
}
