// Package merklelog is a durable, append-only Merkle log for the
// timestamping server. Hashing and proofs are RFC 6962 (Certificate
// Transparency) as implemented by golang.org/x/mod/sumdb/tlog; this package
// only stores the hashes tlog asks it to store and serves them back.
//
// # On-disk layout
//
// The log lives in a single bbolt file, <dir>/log.db, with three buckets.
// All integer keys are 8-byte big-endian so that bbolt keeps them in
// numeric order and appends go to the right edge of each B+tree.
//
//	meta    "version" -> 1 byte, format version (1)
//	        "size"    -> uint64, number of leaves (tree size)
//	        "time"    -> int64, Unix nanoseconds of the last batch (absent while size == 0)
//	        "root"    -> 32 bytes, tree hash at "size" (checked on Open)
//	hashes  uint64 stored-hash index (tlog.StoredHashIndex) -> 32-byte hash
//	leaves  uint64 leaf index -> leaf bytes as given by the caller
//
// The hashes bucket holds exactly what tlog.StoredHashes returns for every
// leaf: the leaf's record hash plus the roots of the complete subtrees it
// closes, about two hashes per leaf. Any tree hash or proof for any past
// size is computed from at most O(log n) of them, read through a
// tlog.HashReader over a bbolt read transaction, so memory use does not
// grow with the log.
//
// # One transaction per batch
//
// Append writes a whole batch (leaves, hashes and the new meta) in a single
// bbolt write transaction. bbolt fsyncs on every commit, so the cost of
// durability is paid once per batch instead of once per leaf: this is how
// the server amortizes it. The transaction also makes the batch atomic: after
// a crash either every leaf of the batch and the matching size, time and
// root are on disk, or none of them are.
//
// Serial numbers are leaf indexes. Batch times are strictly increasing and
// persisted, so they stay monotonic across restarts even if the wall clock
// steps back.
package merklelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/mod/sumdb/tlog"
)

// FileName is the name of the bbolt file inside the log directory.
const FileName = "log.db"

// lockTimeout bounds how long Open waits for another holder of the file lock.
const lockTimeout = time.Second

const formatVersion = 1

var (
	bucketMeta   = []byte("meta")
	bucketHashes = []byte("hashes")
	bucketLeaves = []byte("leaves")

	keyVersion = []byte("version")
	keySize    = []byte("size")
	keyTime    = []byte("time")
	keyRoot    = []byte("root")
)

var (
	// ErrOutOfRange reports an index or tree size beyond the current log,
	// or an otherwise impossible combination of sizes.
	ErrOutOfRange = errors.New("merklelog: out of range")
	// ErrClosed is returned by operations on a closed Log.
	ErrClosed = errors.New("merklelog: log is closed")
	// ErrCorrupt reports stored data that is inconsistent with itself.
	ErrCorrupt = errors.New("corrupt log store")
	// ErrEmptyBatch is returned by Append when build returns no leaves.
	ErrEmptyBatch = errors.New("merklelog: empty batch")
)

// Batch describes the result of one Append.
type Batch struct {
	FirstIndex uint64    // index (= serial) of the batch's first leaf
	Size       uint64    // tree size after the batch
	Root       tlog.Hash // tree hash at Size
	Time       time.Time // batch time (UTC), strictly after the previous batch's
}

// head is the committed state of the log, cached for Size and Root.
type head struct {
	size uint64
	root tlog.Hash
	time time.Time
}

// reopenEvery is how many appended leaves Append lets pass before it
// closes and reopens the bbolt file. bbolt's freelist remembers which
// transaction allocated each page it hands out again until that page is
// freed, which in an append-only log is never: without a reopen that map
// grows by an entry per filled page (about 9 MiB of heap per 5M stamps).
// The mmap likewise keeps every page it ever faulted in (and the
// kernel's fault-around neighbours) mapped, so resident memory grows
// toward the file's size. Reopening drops both; it costs one mmap and a
// meta read, about a millisecond, every 64Ki leaves.
const reopenEvery = 1 << 16

// Log is an open Merkle log. It is safe for concurrent use; appends are
// serialized, reads run concurrently with each other and with appends.
type Log struct {
	path string

	mu          sync.Mutex // serializes Append, reopen and Close
	closed      atomic.Bool
	head        atomic.Pointer[head]
	sinceReopen uint64 // leaves appended since db was opened; guarded by mu
	reopenEvery uint64 // reopenEvery, or less in tests
	readOnly    bool

	// dbMu guards db (and dbErr) against a reopen: readers hold it
	// shared for their whole transaction, reopen exclusively.
	dbMu  sync.RWMutex
	db    *bolt.DB
	dbErr error // why db could not be reopened; the log is unusable
}

// count returns the number of entries in a bucket of dense uint64 keys
// 0..n-1 by looking only at the last key.
func count(b *bolt.Bucket) int64 {
	k, _ := b.Cursor().Last()
	if k == nil {
		return 0
	}
	if len(k) != 8 {
		return -1
	}
	return int64(binary.BigEndian.Uint64(k)) + 1
}

// readHead reads size, root and time from the meta bucket.
func readHead(tx *bolt.Tx) (head, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return head{}, fmt.Errorf("%w: missing meta bucket", ErrCorrupt)
	}
	var h head
	sz, rt, tm := meta.Get(keySize), meta.Get(keyRoot), meta.Get(keyTime)
	if len(sz) != 8 || len(rt) != tlog.HashSize {
		return head{}, fmt.Errorf("%w: bad size or root metadata", ErrCorrupt)
	}
	h.size = binary.BigEndian.Uint64(sz)
	if h.size > math.MaxInt64 {
		return head{}, fmt.Errorf("%w: size %d too large", ErrCorrupt, h.size)
	}
	copy(h.root[:], rt)
	switch {
	case len(tm) == 8:
		h.time = time.Unix(0, int64(binary.BigEndian.Uint64(tm))).UTC()
	case tm == nil && h.size == 0:
	default:
		return head{}, fmt.Errorf("%w: bad time metadata", ErrCorrupt)
	}
	return h, nil
}

// Close closes the log, waiting for an in-progress Append to finish.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Swap(true) {
		return ErrClosed
	}
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if l.dbErr != nil {
		return nil // already closed by the failed reopen
	}
	if err := guard(l.path, l.db.Close); err != nil {
		return fmt.Errorf("merklelog: close %s: %w", l.path, err)
	}
	return nil
}

// Err says why the log cannot be appended to: ErrClosed, or the failure
// that made it unusable (a damaged file, a failed reopen); nil otherwise.
func (l *Log) Err() error {
	if l.closed.Load() {
		return ErrClosed
	}
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	return l.dbErr
}

// fail makes the log unusable after bbolt panicked in a write: what it
// holds in memory can no longer be trusted. The caller holds mu.
func (l *Log) fail(err error) {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	if l.dbErr == nil {
		_ = guard(l.path, l.db.Close)
		l.dbErr = fmt.Errorf("merklelog: %s: %w", l.path, err)
	}
}

// Append adds one batch of leaves in a single durable transaction.
//
// Inside the transaction it fixes the batch's first index (the current
// size) and its time t = max(now in UTC, previous batch time + 1ns), then
// calls build(firstIndex, t) to obtain the leaves, so that leaf i can
// embed its serial firstIndex+i and the time t. If build returns an error
// (or no leaves) nothing is written. When Append returns nil error the
// batch is on disk. build runs while the log's write lock is held, so it
// should be quick and must not call methods of the Log.
func (l *Log) Append(build func(firstIndex uint64, t time.Time) ([][]byte, error), now time.Time) (Batch, error) {
	if ns := now.UnixNano(); !time.Unix(0, ns).Equal(now) {
		return Batch{}, fmt.Errorf("merklelog: time %v not representable in Unix nanoseconds", now)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return Batch{}, ErrClosed
	}
	if l.dbErr != nil {
		return Batch{}, l.dbErr
	}
	if l.readOnly {
		return Batch{}, fmt.Errorf("merklelog: append: %s is open read-only", l.path)
	}
	var b Batch
	err := guard(l.path, func() error {
		return l.db.Update(func(tx *bolt.Tx) error {
			h, err := readHead(tx)
			if err != nil {
				return err
			}
			t := now.UTC()
			if h.size > 0 && !t.After(h.time) {
				t = h.time.Add(time.Nanosecond)
			}
			leaves, err := build(h.size, t)
			if err != nil {
				return err
			}
			if len(leaves) == 0 {
				return ErrEmptyBatch
			}
			if uint64(len(leaves)) > math.MaxInt64-h.size {
				return fmt.Errorf("%w: batch would overflow the log", ErrOutOfRange)
			}
			b, err = appendLeaves(tx, h.size, leaves, t)
			return err
		})
	})
	if errors.Is(err, ErrCorrupt) {
		l.fail(err)
	}
	if err != nil {
		return Batch{}, fmt.Errorf("merklelog: append: %w", err)
	}
	l.head.Store(&head{size: b.Size, root: b.Root, time: b.Time})
	// The batch is durable whatever happens to the reopen, so report it;
	// a failed reopen fails the next call instead.
	if l.sinceReopen += b.Size - b.FirstIndex; l.sinceReopen >= l.reopenEvery {
		_ = l.reopen() // a failure is sticky: the next call reports it
	}
	return b, nil
}

// appendLeaves stores leaves starting at index first and updates meta.
func appendLeaves(tx *bolt.Tx, first uint64, leaves [][]byte, t time.Time) (Batch, error) {
	hb, lb, meta := tx.Bucket(bucketHashes), tx.Bucket(bucketLeaves), tx.Bucket(bucketMeta)
	// Keys are strictly increasing: pack pages full instead of half full.
	hb.FillPercent, lb.FillPercent = 1, 1
	r := hashReader{hb}
	for i, leaf := range leaves {
		n := int64(first) + int64(i)
		hashes, err := tlog.StoredHashes(n, leaf, r)
		if err != nil {
			return Batch{}, err
		}
		idx := tlog.StoredHashIndex(0, n)
		for j := range hashes {
			// bbolt keeps value slices until commit; hashes is not reused.
			if err := hb.Put(u64(uint64(idx)+uint64(j)), hashes[j][:]); err != nil {
				return Batch{}, err
			}
		}
		if err := lb.Put(u64(uint64(n)), leaf); err != nil {
			return Batch{}, err
		}
	}
	size := first + uint64(len(leaves))
	root, err := tlog.TreeHash(int64(size), r)
	if err != nil {
		return Batch{}, err
	}
	for _, kv := range [][2][]byte{
		{keySize, u64(size)},
		{keyTime, u64(uint64(t.UnixNano()))},
		{keyRoot, root[:]},
	} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return Batch{}, err
		}
	}
	return Batch{FirstIndex: first, Size: size, Root: root, Time: t}, nil
}

// Size returns the current number of leaves.
func (l *Log) Size() uint64 {
	return l.head.Load().size
}

// Root returns the current tree size, its hash and the last batch time
// (the zero time for an empty log).
func (l *Log) Root() (size uint64, root tlog.Hash, t time.Time, err error) {
	if l.closed.Load() {
		return 0, tlog.Hash{}, time.Time{}, ErrClosed
	}
	h := l.head.Load()
	return h.size, h.root, h.time, nil
}

// view runs fn in a read transaction with the committed size at its start.
func (l *Log) view(fn func(size uint64, r tlog.HashReader, tx *bolt.Tx) error) error {
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.dbErr != nil {
		return l.dbErr
	}
	err := guard(l.path, func() error {
		return l.db.View(func(tx *bolt.Tx) error {
			h, err := readHead(tx)
			if err != nil {
				return err
			}
			return fn(h.size, hashReader{tx.Bucket(bucketHashes)}, tx)
		})
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// TreeHash returns the tree hash for any size up to the current size.
func (l *Log) TreeHash(size uint64) (tlog.Hash, error) {
	var th tlog.Hash
	err := l.view(func(cur uint64, r tlog.HashReader, _ *bolt.Tx) error {
		if size > cur {
			return fmt.Errorf("%w: tree size %d > log size %d", ErrOutOfRange, size, cur)
		}
		var err error
		th, err = tlog.TreeHash(int64(size), r)
		return err
	})
	return th, err
}

// InclusionProof returns the proof that leaf index is in the tree of the
// given size; it requires index < size <= current size.
func (l *Log) InclusionProof(index, size uint64) (tlog.RecordProof, error) {
	var p tlog.RecordProof
	err := l.view(func(cur uint64, r tlog.HashReader, _ *bolt.Tx) error {
		if index >= size || size > cur {
			return fmt.Errorf("%w: inclusion of leaf %d in tree size %d (log size %d)", ErrOutOfRange, index, size, cur)
		}
		var err error
		p, err = tlog.ProveRecord(int64(size), int64(index), r)
		return err
	})
	return p, err
}

// ConsistencyProof returns the proof that the tree of size newSize extends
// the tree of size oldSize; it requires 1 <= oldSize <= newSize <= current
// size (consistency with the empty tree is trivial and has no proof).
func (l *Log) ConsistencyProof(oldSize, newSize uint64) (tlog.TreeProof, error) {
	var p tlog.TreeProof
	err := l.view(func(cur uint64, r tlog.HashReader, _ *bolt.Tx) error {
		if oldSize == 0 || oldSize > newSize || newSize > cur {
			return fmt.Errorf("%w: consistency from size %d to %d (log size %d)", ErrOutOfRange, oldSize, newSize, cur)
		}
		var err error
		p, err = tlog.ProveTree(int64(newSize), int64(oldSize), r)
		return err
	})
	return p, err
}

// Leaf returns a copy of the leaf bytes at index.
func (l *Log) Leaf(index uint64) ([]byte, error) {
	var leaf []byte
	err := l.view(func(cur uint64, _ tlog.HashReader, tx *bolt.Tx) error {
		if index >= cur {
			return fmt.Errorf("%w: leaf %d (log size %d)", ErrOutOfRange, index, cur)
		}
		key := u64(index)
		k, v := tx.Bucket(bucketLeaves).Cursor().Seek(key)
		if string(k) != string(key) {
			return fmt.Errorf("%w: leaf %d missing", ErrCorrupt, index)
		}
		leaf = append([]byte{}, v...)
		return nil
	})
	return leaf, err
}

// hashReader is a tlog.HashReader over the hashes bucket of one bbolt
// transaction. It copies each hash out of the mmap, so results outlive
// the transaction.
type hashReader struct{ b *bolt.Bucket }

func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		v := r.b.Get(u64(uint64(idx)))
		if len(v) != tlog.HashSize {
			return nil, fmt.Errorf("%w: stored hash %d missing or malformed", ErrCorrupt, idx)
		}
		copy(out[i][:], v)
	}
	return out, nil
}

func u64(x uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), x)
}
