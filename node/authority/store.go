package authority

import (
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/internal/merklelog"
)

// Log is what the authority needs of the durable Merkle log it appends
// stamps to and proves them from. *merklelog.Log, the bbolt log of one
// host, is one; a log replicated through etcd (issue #17) is to be
// another. Every method is safe for concurrent use; the authority's
// appender is the only caller of Append.
type Log interface {
	// Append adds one batch of leaves and returns once they are durable
	// (for a replicated log: committed by its quorum). It fixes the
	// batch's first index (the current size) and its time (now, or the
	// last batch's time + 1 ns if now is not after it), then calls build
	// for the leaves, so that each can embed its serial and the time; if
	// build fails or returns none, nothing is appended. A failed Append
	// appended nothing: serials are never reused.
	Append(build func(firstIndex uint64, t time.Time) ([][]byte, error), now time.Time) (merklelog.Batch, error)
	// Root is the current tree: its size, root hash and the last batch's
	// time (zero for an empty log).
	Root() (size uint64, root tlog.Hash, t time.Time, err error)
	// Leaf is the leaf at index (index < size).
	Leaf(index uint64) ([]byte, error)
	// InclusionProof proves the leaf at index in the tree of size
	// (index < size <= the log's size).
	InclusionProof(index, size uint64) (tlog.RecordProof, error)
	// InclusionProofs proves the count leaves from first in the tree of
	// size, in one read (the deliverer's, per head).
	InclusionProofs(first, count, size uint64) ([]tlog.RecordProof, error)
	// ConsistencyProof proves that the tree of newSize extends the tree
	// of oldSize (1 <= oldSize <= newSize <= the log's size).
	ConsistencyProof(oldSize, newSize uint64) (tlog.TreeProof, error)
	// Close releases the log; whoever opened it closes it, after the
	// authority's Close (the authority never does).
	Close() error
}

var _ Log = (*merklelog.Log)(nil)
