package relay

import (
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"

	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/protocol"
)

// incomingPrefix names what a relay in progress writes in the store: a
// spooled document, then the folder it is assembled in. A verifier
// killed meanwhile leaves them behind; New removes them.
const incomingPrefix = ".incoming-"

// documentSink hashes a relayed document and, when storing, spools it to
// a temporary file so memory stays bounded.
type documentSink struct {
	hash hash.Hash
	file *os.File
}

func (d *documentSink) spool(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, incomingPrefix+"*")
	d.file = f
	return err
}

func (d *documentSink) write(p []byte) error {
	d.hash.Write(p)
	if d.file != nil {
		_, err := d.file.Write(p)
		return err
	}
	return nil
}

func (d *documentSink) discard() {
	if d.file != nil {
		d.file.Close()
		os.Remove(d.file.Name())
	}
}

// keep stores the spooled document and its receipt in their own folder,
// named only from verified fields. The folder is assembled under a
// temporary name, synced, then renamed into place, so a stored folder is
// always whole, even if the verifier is killed meanwhile. A whole folder
// already there (the same receipt relayed again) is left as it is.
func (d *documentSink) keep(dir string, st *protocol.Statement, receipt []byte) (string, error) {
	where := filepath.Join(dir, fmt.Sprintf("%s-%d", st.ServerID, st.Serial))
	if _, err := os.Stat(filepath.Join(where, "document")); err == nil {
		return where, nil
	}
	tmp, err := os.MkdirTemp(dir, incomingPrefix+"*.d")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	if err := d.file.Sync(); err != nil {
		return "", err
	}
	if err := durable.WriteFile(filepath.Join(tmp, "receipt.json"), receipt, 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(d.file.Name(), filepath.Join(tmp, "document")); err != nil {
		return "", err
	}
	if err := durable.SyncDir(tmp); err != nil {
		return "", err
	}
	// A folder without its document is what an older verifier left when
	// it was killed: replace it.
	if err := os.RemoveAll(where); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, where); err != nil {
		return "", err
	}
	return where, durable.SyncDir(dir)
}

// removeIncoming deletes what relays in progress left in the store when
// the verifier stopped without finishing them.
func removeIncoming(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), incomingPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
