package logstore

import (
	"fmt"
	"path/filepath"

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
