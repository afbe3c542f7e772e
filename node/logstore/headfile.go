package logstore

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/protocol"
)

// SaveHead replaces dir's head file with sth atomically and durably:
// the new file is written and fsynced under a temporary name, renamed
// over the old one, and the directory fsynced, so that after a crash
// the file holds either the old head or the new one, whole.
func SaveHead(dir string, sth *protocol.SignedTreeHead) error {
	if err := durable.ReplaceFile(filepath.Join(dir, HeadFileName), protocol.MarshalHeadFile(sth), 0o600); err != nil {
		return fmt.Errorf("saving the tree head: %w", err)
	}
	return nil
}

// Store is what an open data directory keeps for the authority
// (authority.HeadStore): the guard, before stamps are answered, and the
// signed head, after.
type Store struct {
	dir string
	mu  sync.Mutex // the authority calls in order; a test may not
	g   guardWriter
}

// Guard makes size and root the guard, durably: one in-place write and
// fdatasync (guard.go). From then on Open refuses a log that does not
// reproduce them.
func (s *Store) Guard(size uint64, root tlog.Hash, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.g.write(size, root, t)
}

// SaveHead saves sth as the data directory's head file.
func (s *Store) SaveHead(sth *protocol.SignedTreeHead) error { return SaveHead(s.dir, sth) }
