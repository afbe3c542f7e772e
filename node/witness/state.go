package witness

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
	"github.com/tsnode/tsnode/protocol"
)

// StateFileName is the witness's state in its data directory: the last
// head it cosigned of each authority (PROTOCOL.md §13.3).
const StateFileName = "witness-state.json"

// EvidenceDir is where a witness writes evidence files, under its data
// directory.
const EvidenceDir = "evidence"

// State is a witness's durable memory of what it cosigned. Save returns
// only once the new head is on disk; the witness publishes a cosignature
// only after that, so a crash can lose a cosignature but never the
// record of one.
type State struct {
	path string
	self identity.ID
	mu   sync.Mutex
	last map[identity.ID]*protocol.SignedTreeHead
}

// OpenState opens the state in dir for witness self. The heads of the
// authorities trust holds must verify. A state file is created only in
// an absent or empty dir: one missing from a directory that holds other
// files (evidence, say) means the state was lost, and starting afresh
// could cosign a fork of what was cosigned before.
func OpenState(dir string, self identity.ID, trust *protocol.Trust) (*State, error) {
	s := &State{path: filepath.Join(dir, StateFileName), self: self, last: map[identity.ID]*protocol.SignedTreeHead{}}
	_, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, s.create(dir)
	case err != nil:
		return nil, err
	}
	id, heads, err := protocol.ReadWitnessState(s.path)
	if err != nil {
		return nil, fmt.Errorf("witness state: %w; restore %s from a backup, or start this witness under a new id in an empty --data", err, s.path)
	}
	if id != self {
		return nil, fmt.Errorf("%s is the state of witness %s, not of %s: wrong --data directory?", s.path, id, self)
	}
	for _, h := range heads {
		if trust.Trusts(h.Head.ServerID) {
			if _, err := trust.CheckTreeHead(h.Encoded, h.Signature, nil); err != nil {
				return nil, fmt.Errorf("%s: the head of %s: %w", s.path, h.Head.ServerID, err)
			}
		}
		s.last[h.Head.ServerID] = h
	}
	return s, nil
}

func (s *State) create(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("witness state: %w", err)
		}
	case err != nil:
		return fmt.Errorf("witness state: %w", err)
	case len(entries) > 0:
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return fmt.Errorf("%s is missing and %s is not empty (it holds %s): the witness's record of what it cosigned is gone; restore it from a backup, or start this witness in an empty --data",
			s.path, dir, strings.Join(names, ", "))
	}
	return s.write()
}

// Last returns the last head cosigned of authority, nil if none.
func (s *State) Last(authority identity.ID) *protocol.SignedTreeHead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[authority]
}

// Save makes sth the last head cosigned of its authority, durably.
func (s *State) Save(sth *protocol.SignedTreeHead) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := sth.Head.ServerID
	prev := s.last[id]
	s.last[id] = sth
	if err := s.write(); err != nil {
		s.last[id] = prev
		return fmt.Errorf("saving the witness state: %w", err)
	}
	return nil
}

// write replaces the file with s.last. Called with s.mu held (or before
// s is shared).
func (s *State) write() error {
	ids := make([]identity.ID, 0, len(s.last))
	for id := range s.last {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	heads := make([]*protocol.SignedTreeHead, len(ids))
	for i, id := range ids {
		heads[i] = s.last[id]
	}
	return durable.ReplaceFile(s.path, protocol.MarshalWitnessState(s.self, heads), 0o600)
}
