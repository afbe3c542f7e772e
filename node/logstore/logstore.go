// Package logstore is the server's data directory: the Merkle log,
// log.db (internal/merklelog), and head.json, the latest tree head the
// server signed (PROTOCOL.md §5.5). A head is saved before any reply
// carries it, so the log must always reproduce the saved head: Open
// refuses a log that is missing, empty, damaged or shorter than the
// head, rather than issue serials a second time.
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
// function that saves each new head (authority.WithHeadStore). A log is
// created only in an empty or absent dir (Init creates one elsewhere).
// It checks the file's structure (every page), the stored hashes of the
// newest merklelog.StartCheckLeaves leaves (Check checks all), and that
// the log holds the saved head: its size at least the head's,
// its tree hash at the head's size the head's root.
func Open(dir string, self identity.ID, trust *protocol.Trust) (*merklelog.Log, func(*protocol.SignedTreeHead) error, error) {
	sth, err := readHead(dir, self, trust)
	if err != nil {
		return nil, nil, err
	}
	lg, err := merklelog.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		lg, err = create(dir, sth)
	} else if err != nil {
		err = fmt.Errorf("%w; %s", err, restore)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := checkLog(lg, sth, dir, false); err != nil {
		lg.Close()
		return nil, nil, err
	}
	return lg, func(sth *protocol.SignedTreeHead) error { return SaveHead(dir, sth) }, nil
}

// Report is what Check found in a data directory that passed it.
type Report struct {
	Size uint64    // stamps in the log
	Root tlog.Hash // the log's tree hash
	Time time.Time // the last batch's time (zero for an empty log)
	// Head is the saved head, nil if there is none (a log that never
	// signed one, or one older than head files).
	Head *protocol.SignedTreeHead
}

// Check runs Open's checks on dir without changing anything: the log is
// opened read-only, so Check fails (in use) while a server runs on it.
func Check(dir string, self identity.ID, trust *protocol.Trust) (*Report, error) {
	sth, err := readHead(dir, self, trust)
	if err != nil {
		return nil, err
	}
	lg, err := merklelog.OpenReadOnly(dir)
	if errors.Is(err, fs.ErrNotExist) && sth != nil {
		_, err = create(dir, sth) // says what is wrong
	}
	if err != nil {
		return nil, err
	}
	defer lg.Close()
	if err := checkLog(lg, sth, dir, true); err != nil {
		return nil, err
	}
	size, root, t, err := lg.Root()
	if err != nil {
		return nil, err
	}
	return &Report{Size: size, Root: root, Time: t, Head: sth}, nil
}

// checkLog checks the hashes of lg (every one if full, else those of
// the newest merklelog.StartCheckLeaves leaves), and that lg reproduces
// sth.
func checkLog(lg *merklelog.Log, sth *protocol.SignedTreeHead, dir string, full bool) error {
	var first uint64
	if size := lg.Size(); !full && size > merklelog.StartCheckLeaves {
		first = size - merklelog.StartCheckLeaves
	}
	if err := lg.VerifyFrom(first); err != nil {
		return fmt.Errorf("%w; %s", err, restore)
	}
	if sth == nil {
		return nil
	}
	return matches(lg, sth, filepath.Join(dir, merklelog.FileName), filepath.Join(dir, HeadFileName))
}

// create makes a new log in dir if nothing says that one was lost.
func create(dir string, sth *protocol.SignedTreeHead) (*merklelog.Log, error) {
	logPath := filepath.Join(dir, merklelog.FileName)
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
// neither a log nor a head file.
func Init(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, merklelog.FileName)); !errors.Is(err, fs.ErrNotExist) {
		return nil // a log is there: Open checks it
	}
	headPath := filepath.Join(dir, HeadFileName)
	if _, err := os.Stat(headPath); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--init: %s exists: this directory held a log that published stamps; %s (to abandon that log deliberately, move the head file away first)", headPath, restore)
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

// matches checks that lg reproduces sth.
func matches(lg *merklelog.Log, sth *protocol.SignedTreeHead, logPath, headPath string) error {
	size, root, _, err := lg.Root()
	if err != nil {
		return err
	}
	h := sth.Head
	if size < h.Size {
		return fmt.Errorf("%s holds %d stamps (root %s) but %s was published at size %d (root %s): the log lost stamps; %s",
			logPath, size, hexHash(root), headPath, h.Size, hexHash(h.Root), restore)
	}
	at, err := lg.TreeHash(h.Size)
	if err != nil {
		return err
	}
	if at != h.Root {
		return fmt.Errorf("%s (%d stamps) has root %s at size %d, but %s was published with root %s at that size: the log was changed; %s",
			logPath, size, hexHash(at), h.Size, headPath, hexHash(h.Root), restore)
	}
	return nil
}

func hexHash(h tlog.Hash) string { return fmt.Sprintf("%x", h[:]) }
