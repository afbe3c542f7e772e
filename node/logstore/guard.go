package logstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/durable"
)

// GuardFileName is the name of the guard file in the data directory: the
// size and root of the latest tree the server signed a head of, made
// durable before any stamp under that head is answered (PROTOCOL.md
// §5.5). It is what Open holds log.db to; head.json, the signed head,
// is saved after answering, at most once a second.
const GuardFileName = "guard"

// The guard file is two fixed-size slots, rewritten in place in turn:
// a power cut during one write can tear only the slot being written,
// whose tree no stamp was answered under yet, and the other slot still
// holds the last guard that was durable. Rewriting a file of unchanged
// size in place lets one fdatasync (no rename, no directory fsync, no
// journal commit for metadata) make each guard durable.
//
// A slot (all integers big-endian):
//
//	  0  12  magic "tsnode-guard"
//	 12   4  version, 1
//	 16   8  sequence number: the slot with the higher one is the newer
//	 24  32  SHA-256 of the server's id
//	 56   8  tree size
//	 64  32  root of the tree of that size
//	 96   8  time of the tree's last batch, ns since 1970 UTC
//	104 376  zero
//	480  32  SHA-256 of bytes 0-479
const (
	guardSlot    = 512
	guardSlots   = 2
	guardVersion = 1
	guardSumAt   = guardSlot - sha256.Size
)

var guardMagic = []byte("tsnode-guard")

// Guard is one record of the guard file: the log must reproduce a tree
// of Size with Root.
type Guard struct {
	Seq  uint64
	Size uint64
	Root tlog.Hash
	Time time.Time
	// Torn is set when the other slot is damaged: what a power cut
	// during a write leaves (see above).
	Torn bool
}

func guardIDHash(self identity.ID) [32]byte { return sha256.Sum256([]byte(self)) }

func encodeGuard(self identity.ID, g *Guard) []byte {
	b := make([]byte, guardSlot)
	copy(b, guardMagic)
	binary.BigEndian.PutUint32(b[12:], guardVersion)
	binary.BigEndian.PutUint64(b[16:], g.Seq)
	id := guardIDHash(self)
	copy(b[24:], id[:])
	binary.BigEndian.PutUint64(b[56:], g.Size)
	copy(b[64:], g.Root[:])
	if !g.Time.IsZero() {
		binary.BigEndian.PutUint64(b[96:], uint64(g.Time.UnixNano()))
	}
	sum := sha256.Sum256(b[:guardSumAt])
	copy(b[guardSumAt:], sum[:])
	return b
}

// errSlot is a slot whose checksum fails; errEmpty one never written.
var errSlot, errEmpty = errors.New("checksum mismatch"), errors.New("empty")

func decodeGuard(self identity.ID, b []byte) (*Guard, error) {
	if bytes.Count(b, []byte{0}) == len(b) {
		return nil, errEmpty
	}
	if sum := sha256.Sum256(b[:guardSumAt]); !bytes.Equal(sum[:], b[guardSumAt:]) {
		return nil, errSlot
	}
	if !bytes.Equal(b[:12], guardMagic) {
		return nil, errors.New("not a tsnode guard (bad magic)")
	}
	if v := binary.BigEndian.Uint32(b[12:]); v != guardVersion {
		return nil, fmt.Errorf("guard version %d, this tsnode reads version %d", v, guardVersion)
	}
	if id := guardIDHash(self); !bytes.Equal(b[24:56], id[:]) {
		return nil, fmt.Errorf("the guard of another server than %s: wrong --data directory?", self)
	}
	g := &Guard{Seq: binary.BigEndian.Uint64(b[16:]), Size: binary.BigEndian.Uint64(b[56:])}
	copy(g.Root[:], b[64:96])
	if ns := binary.BigEndian.Uint64(b[96:]); ns != 0 {
		g.Time = time.Unix(0, int64(ns)).UTC()
	}
	return g, nil
}

// damagedGuard is the advice for a guard file Open cannot read.
const damagedGuard = "if log.db is intact (tsnode log check with the guard moved away), move the guard file away and start: it is made again from head.json"

// ReadGuard reads dir's guard file for the server self: nil, nil if there
// is none. It fails, naming the file, if the file is not two slots long,
// if neither slot holds a guard of self that checks, or if a checked slot
// is of another server or version; one slot that does not check is what
// a power cut during its write leaves, and the other is taken (Torn).
func ReadGuard(dir string, self identity.ID) (*Guard, error) {
	path := filepath.Join(dir, GuardFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) != guardSlot*guardSlots {
		return nil, fmt.Errorf("%s is %d bytes, want %d: damaged; %s", path, len(b), guardSlot*guardSlots, damagedGuard)
	}
	var best *Guard
	torn := false
	var why []string
	for i := range guardSlots {
		g, err := decodeGuard(self, b[i*guardSlot:(i+1)*guardSlot])
		switch {
		case err == errEmpty:
		case err == errSlot:
			torn = true
			why = append(why, fmt.Sprintf("slot %d: %v", i, err))
		case err != nil:
			return nil, fmt.Errorf("%s, slot %d: %v", path, i, err)
		case best == nil || g.Seq > best.Seq:
			best = g
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%s holds no guard that checks (%v): damaged; %s", path, why, damagedGuard)
	}
	best.Torn = torn
	return best, nil
}

// guardWriter rewrites dir's guard file in place.
type guardWriter struct {
	path string
	self identity.ID
	last *Guard // nil: no guard file yet
}

// write makes size, root and t the guard, durably. Guards only grow: a
// smaller size is refused, the same tree again is not written.
func (w *guardWriter) write(size uint64, root tlog.Hash, t time.Time) error {
	if l := w.last; l != nil {
		if size < l.Size {
			return fmt.Errorf("%s guards size %d: refusing to lower it to %d", w.path, l.Size, size)
		}
		if size == l.Size && root == l.Root {
			return nil
		}
	}
	g := &Guard{Size: size, Root: root, Time: t}
	if w.last == nil {
		// The file is made whole (both slots, the second empty) and put
		// in place with a rename, once; after that only rewritten.
		b := make([]byte, guardSlot*guardSlots)
		copy(b, encodeGuard(w.self, g))
		if err := durable.ReplaceFile(w.path, b, 0o600); err != nil {
			return fmt.Errorf("creating %s: %w", w.path, err)
		}
		w.last = g
		return nil
	}
	g.Seq = w.last.Seq + 1
	f, err := os.OpenFile(w.path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing the guard: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteAt(encodeGuard(w.self, g), int64(g.Seq%guardSlots)*guardSlot); err != nil {
		return fmt.Errorf("writing the guard: %w", err)
	}
	if err := durable.Datasync(f); err != nil {
		return fmt.Errorf("writing the guard: %w", err)
	}
	w.last = g
	return nil
}
