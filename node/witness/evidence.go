package witness

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/protocol"
)

// evidenceStore is the evidence/ folder of a witness: one file per
// authority proven to equivocate (the first evidence found; more would
// prove nothing more), read back at start so that a restart does not
// forget it.
type evidenceStore struct {
	dir string
	mu  sync.Mutex
	by  map[identity.ID]string // authority → file
}

// evidenceName is the file of evidence against authority.
func evidenceName(authority identity.ID) string { return string(authority) + ".evidence.json" }

func openEvidence(dataDir string, trust *protocol.Trust) (*evidenceStore, error) {
	s := &evidenceStore{dir: filepath.Join(dataDir, EvidenceDir), by: map[identity.ID]string{}}
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".evidence.json")
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(s.dir, e.Name())
		f, err := protocol.ReadEvidenceFile(path)
		if err != nil {
			return nil, err
		}
		if trust.Trusts(identity.ID(id)) {
			if _, err := f.Verify(trust); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		s.by[identity.ID(id)] = path
	}
	return s, nil
}

// against returns the file of evidence held against authority, or "".
func (s *evidenceStore) against(authority identity.ID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.by[authority]
}

// hold writes e unless evidence against authority is already held; isNew
// says whether it was not. The file is durable before hold returns.
func (s *evidenceStore) hold(authority identity.ID, e *protocol.Evidence) (path string, isNew bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.by[authority]; p != "" {
		return p, false, nil
	}
	path = filepath.Join(s.dir, evidenceName(authority))
	s.by[authority] = path // held in memory even if the disk fails
	b, _ := json.MarshalIndent(e.File(), "", "  ")
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return path, true, err
	}
	return path, true, durable.ReplaceFile(path, append(b, '\n'), 0o600)
}

// headRing remembers the heads of one authority seen lately, to compare
// each new one with: at most n, the oldest forgotten first.
type headRing struct {
	mu    sync.Mutex
	n     int
	heads []*protocol.SignedTreeHead
	keys  map[[32]byte]bool
}

func newHeadRing(n int) *headRing { return &headRing{n: n, keys: map[[32]byte]bool{}} }

// add remembers h; false if it was already there.
func (r *headRing) add(h *protocol.SignedTreeHead) bool {
	k := sha256.Sum256(h.Encoded)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[k] {
		return false
	}
	if len(r.heads) >= r.n {
		delete(r.keys, sha256.Sum256(r.heads[0].Encoded))
		r.heads = r.heads[1:]
	}
	r.heads = append(r.heads, h)
	r.keys[k] = true
	return true
}

// all returns the heads remembered, oldest first.
func (r *headRing) all() []*protocol.SignedTreeHead {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*protocol.SignedTreeHead(nil), r.heads...)
}
