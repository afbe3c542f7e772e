package authority

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/node/logstore"
	"github.com/tsnode/tsnode/protocol"
)

// crasher kills a server in a test: at the nth time the pipeline reaches
// point, it copies the data directory as a kill -9 would leave it (the
// guard and head file as they are, log.db as of its last commit) and
// notes which stamps were answered by then; from then on the store
// fails, as a dead process writes nothing more.
type crasher struct {
	t         *testing.T
	dir, snap string
	lg        *merklelog.Log
	point     string
	nth       int

	mu       sync.Mutex
	seen     int
	dead     bool
	reqs     []*request
	answered []*Stamp // by the crash
}

var errCrashed = errors.New("crashed")

// at is called at each point; it reports whether the crash is now.
func (c *crasher) at(point string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || point != c.point {
		return false
	}
	if c.seen++; c.seen < c.nth {
		return false
	}
	c.dead = true
	return true
}

// snapshot copies the data directory; the pipeline's only writer of the
// guard and head file (the deliverer, or the store call it is in) is
// held meanwhile, and the futures it resolves are polled.
func (c *crasher) snapshot() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(c.snap, 0o700); err != nil {
		c.t.Error(err)
		return
	}
	for _, name := range []string{logstore.GuardFileName, logstore.HeadFileName} {
		b, err := os.ReadFile(filepath.Join(c.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(c.snap, name), b, 0o600)
		}
		if err != nil {
			c.t.Error(err)
		}
	}
	f, err := os.Create(filepath.Join(c.snap, merklelog.FileName))
	if err == nil {
		_, err = c.lg.Backup(f)
		f.Close()
	}
	if err != nil {
		c.t.Error(err)
	}
	for _, r := range c.reqs {
		select {
		case <-r.done:
			if r.err == nil {
				c.answered = append(c.answered, r.st)
			}
		default:
		}
	}
}

func (c *crasher) isDead() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.dead }

// crashStore is the data directory's store, crashing at the points of a
// guard or head save.
type crashStore struct {
	s *logstore.Store
	c *crasher
}

func (s crashStore) Guard(size uint64, root tlog.Hash, t time.Time) error {
	if s.c.isDead() {
		return errCrashed
	}
	path := filepath.Join(s.c.dir, logstore.GuardFileName)
	_, statErr := os.Stat(path)
	if err := s.s.Guard(size, root, t); err != nil {
		return err
	}
	if !s.c.at("mid-guard") {
		return nil
	}
	// Torn as a power cut leaves it: the first guard is made with a
	// rename, so it is not there yet; later ones tear their slot.
	if statErr != nil {
		os.Remove(path)
	} else if b, err := os.ReadFile(path); err == nil {
		g, _ := logstore.ReadGuard(s.c.dir, "server")
		at := int(g.Seq%2)*512 + 256
		copy(b[at:at+256], make([]byte, 256))
		os.WriteFile(path, b, 0o600)
	}
	s.c.snapshot()
	return errCrashed
}

func (s crashStore) SaveHead(sth *protocol.SignedTreeHead) error {
	if s.c.isDead() {
		return errCrashed
	}
	switch {
	case s.c.at("head-saving"):
	case s.c.at("mid-head"): // half of the new file, not renamed yet
		b := protocol.MarshalHeadFile(sth)
		os.WriteFile(filepath.Join(s.c.dir, logstore.HeadFileName+".tmp"), b[:len(b)/2], 0o600)
	default:
		if err := s.s.SaveHead(sth); err != nil || !s.c.at("head-saved") {
			return err
		}
	}
	s.c.snapshot()
	return errCrashed
}

// TestCrashAtEveryPoint kills the server (in effect) at every point of
// the order in which a head's stamps are answered: its tree guarded,
// the guard write torn, the head signed, its stamps answered, head.json
// about to be written, half written, written; each at the first head
// and at a later one. Restarted from the files on disk, the server must
// open them; every stamp answered before the crash must be under a tree
// the guard holds, in a log that reproduces its head; and the next
// serial must follow every answered one.
func TestCrashAtEveryPoint(t *testing.T) {
	points := []string{"guarded", "mid-guard", "signed", "answered", "head-saving", "mid-head", "head-saved"}
	for _, point := range points {
		for _, nth := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s-%d", point, nth), func(t *testing.T) { crashAt(t, point, nth) })
		}
	}
}

func crashAt(t *testing.T, point string, nth int) {
	dir := t.TempDir()
	c := &crasher{t: t, dir: dir, snap: filepath.Join(t.TempDir(), "data"), point: point, nth: nth}
	lg, store, err := logstore.Open(dir, "server", trust(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	c.lg = lg
	hooks := func(a *Authority) {
		a.saveEvery = 0 // every head saved: each save's points are reached
		a.hook = func(p string) {
			if c.at(p) {
				c.snapshot()
			}
		}
	}
	a := newAuthority(t, lg, nil, WithHeadStore(crashStore{store, c}), hooks)
	requester := entry(t, "1000")
	for round := 0; round < 8 && !c.isDead(); round++ {
		var reqs []*request
		for i := range 12 {
			reqs = append(reqs, a.add(context.Background(), docEntry(requester, round*100+i), false))
		}
		c.mu.Lock()
		c.reqs = append(c.reqs, reqs...)
		c.mu.Unlock()
		for _, r := range reqs {
			await(t, r.future())
		}
	}
	a.Close()
	if !c.isDead() {
		t.Fatalf("the pipeline never reached %s %d times", point, nth)
	}

	// Restart on what the crash left.
	lg2, store2, err := logstore.Open(c.snap, "server", trust(t))
	if err != nil {
		t.Fatalf("restart after a crash at %s: %v", point, err)
	}
	defer lg2.Close()
	g, err := logstore.ReadGuard(c.snap, "server")
	if err != nil {
		t.Fatal(err)
	}
	var maxSerial int64 = -1
	for _, st := range c.answered {
		h := st.Head.Head
		if g == nil || g.Size < h.Size {
			t.Fatalf("a stamp was answered under a head of size %d, but the guard holds %+v", h.Size, g)
		}
		if root, err := lg2.TreeHash(h.Size); err != nil || root != h.Root {
			t.Fatalf("the restarted log does not reproduce the answered head of size %d: %v", h.Size, err)
		}
		maxSerial = max(maxSerial, int64(st.Statement.Serial))
	}
	if len(c.answered) == 0 && nth > 1 {
		t.Fatalf("nothing answered before the crash at %s %d", point, nth)
	}
	b := newAuthority(t, lg2, nil, WithHeadStore(store2))
	st, err := await(t, b.Add(context.Background(), docEntry(requester, 9999)))
	if err != nil {
		t.Fatal(err)
	}
	if int64(st.Statement.Serial) <= maxSerial {
		t.Fatalf("after the restart serial %d was issued again (answered up to %d)", st.Statement.Serial, maxSerial)
	}
}
