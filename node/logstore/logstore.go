// Package logstore is the server's data directory: the Merkle log,
// log.db (internal/merklelog); the guard, the size and root of the
// latest tree the server signed a head of, made durable before any
// stamp under that head is answered; and head.json, the latest signed
// head, saved after answering (PROTOCOL.md §5.5). The log must always
// reproduce both: Open refuses a log that is missing, empty, damaged or
// shorter than the guard or the head, rather than issue serials a
// second time.
package logstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/merklelog"
	"github.com/tsnode/tsnode/protocol"
)

// HeadFileName is the name of the head file in the data directory.
const HeadFileName = "head.json"

// restore is what to do about a log that lost what a head covers.
const restore = "restore log.db from a backup (keep the damaged file for inspection); a new log in its place would issue the same serials again"

// Open opens the log in dir for the server self, whose heads trust must
// accept (its current key and retired ones), and returns it with the
// store of its guard and head (authority.WithHeadStore). A log is
// created only in an empty or absent dir (Init creates one elsewhere).
// It checks the file's structure (every page), the stored hashes of the
// newest merklelog.StartCheckLeaves leaves (Check checks all), and that
// the log holds the guard and the saved head: its size at least theirs,
// its tree hash at each one's size that one's root. A directory with a
// head file but no guard (made before guards) gets a guard of that head.
func Open(dir string, self identity.ID, trust *protocol.Trust) (*merklelog.Log, *Store, error) {
	sth, g, err := readState(dir, self, trust)
	if err != nil {
		return nil, nil, err
	}
	lg, err := merklelog.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		lg, err = create(dir, sth, g)
	} else if err != nil {
		err = fmt.Errorf("%w; %s", err, restore)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := checkLog(lg, sth, g, dir, false); err != nil {
		lg.Close()
		return nil, nil, err
	}
	st := &Store{dir: dir, g: guardWriter{path: filepath.Join(dir, GuardFileName), self: self, last: g}}
	if g == nil && sth != nil {
		if err := st.Guard(sth.Head.Size, sth.Head.Root, sth.Head.Time); err != nil {
			lg.Close()
			return nil, nil, err
		}
	}
	return lg, st, nil
}

// readState reads dir's head file and guard.
func readState(dir string, self identity.ID, trust *protocol.Trust) (*protocol.SignedTreeHead, *Guard, error) {
	sth, err := readHead(dir, self, trust)
	if err != nil {
		return nil, nil, err
	}
	g, err := ReadGuard(dir, self)
	if err != nil {
		return nil, nil, err
	}
	return sth, g, nil
}

// Report is what Check found in a data directory that passed it.
type Report struct {
	Size uint64    // stamps in the log
	Root tlog.Hash // the log's tree hash
	Time time.Time // the last batch's time (zero for an empty log)
	// Head is the saved head, nil if there is none (a log that never
	// signed one, or one older than head files).
	Head *protocol.SignedTreeHead
	// Guard is the guard, nil if there is none (a log that never signed
	// a head, or one older than guards).
	Guard *Guard
}

// Check runs Open's checks on dir without changing anything: the log is
// opened read-only, so Check fails (in use) while a server runs on it.
func Check(dir string, self identity.ID, trust *protocol.Trust) (*Report, error) {
	sth, g, err := readState(dir, self, trust)
	if err != nil {
		return nil, err
	}
	lg, err := merklelog.OpenReadOnly(dir)
	if errors.Is(err, fs.ErrNotExist) && (sth != nil || g != nil) {
		_, err = create(dir, sth, g) // says what is wrong
	}
	if err != nil {
		return nil, err
	}
	defer lg.Close()
	if err := checkLog(lg, sth, g, dir, true); err != nil {
		return nil, err
	}
	size, root, t, err := lg.Root()
	if err != nil {
		return nil, err
	}
	return &Report{Size: size, Root: root, Time: t, Head: sth, Guard: g}, nil
}

// checkLog checks the hashes of lg (every one if full, else those of
// the newest merklelog.StartCheckLeaves leaves), and that lg reproduces
// the guard g and the head sth (the guard first: it is the newer).
func checkLog(lg *merklelog.Log, sth *protocol.SignedTreeHead, g *Guard, dir string, full bool) error {
	var first uint64
	if size := lg.Size(); !full && size > merklelog.StartCheckLeaves {
		first = size - merklelog.StartCheckLeaves
	}
	if err := lg.VerifyFrom(first); err != nil {
		return fmt.Errorf("%w; %s", err, restore)
	}
	logPath := filepath.Join(dir, merklelog.FileName)
	if g != nil {
		if err := matches(lg, g.Size, g.Root, logPath, filepath.Join(dir, GuardFileName)); err != nil {
			return err
		}
	}
	if sth == nil {
		return nil
	}
	return matches(lg, sth.Head.Size, sth.Head.Root, logPath, filepath.Join(dir, HeadFileName))
}

// create makes a new log in dir if nothing says that one was lost.
func create(dir string, sth *protocol.SignedTreeHead, g *Guard) (*merklelog.Log, error) {
	logPath := filepath.Join(dir, merklelog.FileName)
	if g != nil {
		return nil, fmt.Errorf("%s is missing, but %s says a tree head was published at size %d: the log of those stamps is gone; %s",
			logPath, filepath.Join(dir, GuardFileName), g.Size, restore)
	}
	if sth != nil {
		return nil, fmt.Errorf("%s is missing, but %s holds a published tree head of size %d: the log of those stamps is gone; %s",
			logPath, filepath.Join(dir, HeadFileName), sth.Head.Size, restore)
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return nil, fmt.Errorf("%s is missing and %s is not empty (it holds %s): if this is the server's data directory, restore its log.db from a backup; to start a new log in it deliberately, pass --init",
			logPath, dir, strings.Join(names, ", "))
	}
	return merklelog.Create(dir)
}

// Init creates a new, empty log in dir, which may hold other files, but
// neither a log nor a head file nor a guard.
func Init(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, merklelog.FileName)); !errors.Is(err, fs.ErrNotExist) {
		return nil // a log is there: Open checks it
	}
	headPath := filepath.Join(dir, HeadFileName)
	if _, err := os.Stat(headPath); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--init: %s exists: this directory held a log that published stamps; %s (to abandon that log deliberately, move the head file away first)", headPath, restore)
	}
	guardPath := filepath.Join(dir, GuardFileName)
	if _, err := os.Stat(guardPath); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--init: %s exists: this directory held a log that published stamps; %s (to abandon that log deliberately, move the guard file away first)", guardPath, restore)
	}
	lg, err := merklelog.Create(dir)
	if err != nil {
		return err
	}
	return lg.Close()
}

// readHead reads dir's head file, if there is one, and checks that it
// is a head of self signed with a key of self that trust accepts.
func readHead(dir string, self identity.ID, trust *protocol.Trust) (*protocol.SignedTreeHead, error) {
	path := filepath.Join(dir, HeadFileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	sth, err := protocol.ReadHeadFile(path)
	if err != nil {
		return nil, err
	}
	if sth.Head.ServerID != self {
		return nil, fmt.Errorf("%s is a tree head of %s, not of this server %s: wrong --data directory?", path, sth.Head.ServerID, self)
	}
	if _, err := trust.CheckTreeHead(sth.Encoded, sth.Signature, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sth, nil
}

// matches checks that lg reproduces the tree of size and root that the
// file from (the guard or the head file) says was published.
func matches(lg *merklelog.Log, hsize uint64, hroot tlog.Hash, logPath, from string) error {
	if hsize == 0 {
		return nil
	}
	size, root, _, err := lg.Root()
	if err != nil {
		return err
	}
	if size < hsize {
		return fmt.Errorf("%s holds %d stamps (root %s) but %s says a tree head was published at size %d (root %s): the log lost stamps; %s",
			logPath, size, hexHash(root), from, hsize, hexHash(hroot), restore)
	}
	at, err := lg.TreeHash(hsize)
	if err != nil {
		return err
	}
	if at != hroot {
		return fmt.Errorf("%s (%d stamps) has root %s at size %d, but %s says a tree head was published with root %s at that size: the log was changed; %s",
			logPath, size, hexHash(at), hsize, from, hexHash(hroot), restore)
	}
	return nil
}

func hexHash(h tlog.Hash) string { return fmt.Sprintf("%x", h[:]) }
