package merklelog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/mod/sumdb/tlog"
)

// Open opens the existing log in dir. A missing log.db is an error
// wrapping fs.ErrNotExist, never a new log (Create makes one): a log
// that vanished must not start again at serial 0. Before bbolt maps the
// file, checkFile checks its structure; then the metadata is checked
// against the stored hashes (O(log size)); Verify checks every hash. It
// fails fast if another process holds the log open.
func Open(dir string) (*Log, error) { return open(dir, false) }

// OpenReadOnly is Open without writing: Append fails, and the log can
// be opened while other read-only openers hold it, not while a writer
// does.
func OpenReadOnly(dir string) (*Log, error) { return open(dir, true) }

func open(dir string, readOnly bool) (*Log, error) {
	path, err := existingFile(dir)
	if err != nil {
		return nil, err
	}
	unlock, err := lockShared(path)
	if err != nil {
		return nil, err
	}
	err = checkFile(path)
	unlock() // bbolt takes its own lock
	if err != nil {
		return nil, fmt.Errorf("merklelog: %s: %w", path, err)
	}
	db, err := openDB(path, readOnly)
	if err != nil {
		return nil, err
	}
	var h head
	err = guard(path, func() error {
		return db.View(func(tx *bolt.Tx) (err error) { h, err = checkMeta(tx); return err })
	})
	if err != nil {
		_ = guard(path, db.Close)
		return nil, fmt.Errorf("merklelog: %s: %w", path, err)
	}
	l := &Log{path: path, db: db, reopenEvery: reopenEvery, readOnly: readOnly}
	l.head.Store(&h)
	return l, nil
}

// Create creates a new, empty log in dir, creating dir (0700) if needed;
// dir/log.db must not exist yet.
func Create(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("merklelog: create log directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("merklelog: create %s: %w", path, err)
	}
	f.Close()
	db, err := openDB(path, false)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	var h head
	if err = db.Update(func(tx *bolt.Tx) (err error) { h, err = createBuckets(tx); return err }); err != nil {
		db.Close()
		os.Remove(path)
		return nil, fmt.Errorf("merklelog: %s: %w", path, err)
	}
	l := &Log{path: path, db: db, reopenEvery: reopenEvery}
	l.head.Store(&h)
	return l, nil
}

// existingFile returns dir's log.db if it exists and is not empty.
func existingFile(dir string) (string, error) {
	path := filepath.Join(dir, FileName)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("merklelog: %s does not exist: %w", path, fs.ErrNotExist)
	case err != nil:
		return "", fmt.Errorf("merklelog: %w", err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("merklelog: %s is not a regular file", path)
	case st.Size() == 0:
		return "", fmt.Errorf("merklelog: %s: %w: the file is empty (0 bytes)", path, ErrCorrupt)
	}
	return path, nil
}

func inUse(path string) error {
	return fmt.Errorf("merklelog: %s is in use: another process (a running server? stop it first) or another Open in this one holds its lock", path)
}

func openDB(path string, readOnly bool) (*bolt.DB, error) {
	var db *bolt.DB
	err := guard(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, inUse(path)
		}
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("merklelog: %w", err)
		}
		return nil, fmt.Errorf("merklelog: open %s (not a valid log database?): %w", path, err)
	}
	return db, nil
}

// reopen closes and reopens the bbolt file (see reopenEvery) and checks
// that it still holds the head the log last committed. The caller holds
// mu. If it fails, every later call fails with the reason.
func (l *Log) reopen() error {
	l.dbMu.Lock()
	defer l.dbMu.Unlock()
	l.sinceReopen = 0
	err := guard(l.path, l.db.Close)
	if err == nil {
		l.db, err = openDB(l.path, false)
	}
	if err == nil {
		var h head
		err = guard(l.path, func() error {
			return l.db.View(func(tx *bolt.Tx) (err error) { h, err = readHead(tx); return err })
		})
		if want := l.head.Load(); err == nil && (h.size != want.size || h.root != want.root) {
			err = fmt.Errorf("%w: size %d after reopening, want %d", ErrCorrupt, h.size, want.size)
		}
		if err != nil {
			_ = guard(l.path, l.db.Close)
		}
	}
	if err != nil {
		l.dbErr = fmt.Errorf("merklelog: reopen %s: %w", l.path, err)
		return l.dbErr
	}
	return nil
}

// createBuckets creates the buckets and metadata of a new log.
func createBuckets(tx *bolt.Tx) (head, error) {
	for _, name := range [][]byte{bucketMeta, bucketHashes, bucketLeaves} {
		if _, err := tx.CreateBucket(name); err != nil {
			return head{}, err
		}
	}
	meta := tx.Bucket(bucketMeta)
	emptyRoot, _ := tlog.TreeHash(0, nil)
	for _, kv := range [][2][]byte{{keyVersion, {formatVersion}}, {keySize, u64(0)}, {keyRoot, emptyRoot[:]}} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return head{}, err
		}
	}
	return head{root: emptyRoot}, nil
}

// checkMeta checks the metadata of an existing log against the stored
// hashes and leaves. The work is O(log size).
func checkMeta(tx *bolt.Tx) (head, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return head{}, fmt.Errorf("%w: missing meta bucket", ErrCorrupt)
	}
	if v := meta.Get(keyVersion); len(v) != 1 || v[0] != formatVersion {
		return head{}, fmt.Errorf("%w: unsupported format version %x", ErrCorrupt, v)
	}
	h, err := readHead(tx)
	if err != nil {
		return head{}, err
	}
	hb, lb := tx.Bucket(bucketHashes), tx.Bucket(bucketLeaves)
	if hb == nil || lb == nil {
		return head{}, fmt.Errorf("%w: missing hashes or leaves bucket", ErrCorrupt)
	}
	want := tlog.StoredHashCount(int64(h.size))
	if got := count(hb); got != want {
		return head{}, fmt.Errorf("%w: size %d needs %d stored hashes, found %d", ErrCorrupt, h.size, want, got)
	}
	if got := count(lb); got != int64(h.size) {
		return head{}, fmt.Errorf("%w: size %d but %d leaves stored", ErrCorrupt, h.size, got)
	}
	root, err := tlog.TreeHash(int64(h.size), hashReader{hb})
	if err != nil {
		return head{}, err
	}
	if root != h.root {
		return head{}, fmt.Errorf("%w: stored root %v does not match root %v computed from stored hashes at size %d", ErrCorrupt, h.root, root, h.size)
	}
	return h, nil
}
