package authority

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/tsnode/tsnode/protocol"
)

// Stamps whose batch is in the log, serials taken, but that no head
// answered, fail with one of these (errors.Is), so that the requester is
// told they are logged.
var (
	// ErrNotGuarded: the head store could not guard the head's tree (a
	// full disk, an I/O error: HeadStore.Guard), and no head is published
	// over a tree the server could forget.
	ErrNotGuarded = errors.New("authority: the tree was not guarded")
	// ErrNotSigned: the tree head could not be signed.
	ErrNotSigned = errors.New("authority: the tree head was not signed")
)

// headError is why a head over stamps already in the log failed: kind
// (ErrNotGuarded, ErrNotSigned) for errors.Is, and the cause.
type headError struct {
	kind error
	what string // "guarding the tree", "signing the tree head"
	size uint64
	err  error
}

func (e *headError) Error() string {
	return fmt.Sprintf("authority: %s of size %d: %v", e.what, e.size, e.err)
}

func (e *headError) Unwrap() []error { return []error{e.kind, e.err} }

// HeadStore is where a server keeps what protects its log (node/logstore).
type HeadStore interface {
	// Guard makes durable that the log must reproduce the tree of size
	// and root (t: its last batch's time). No stamp under a head of that
	// tree is answered, and Head never returns one, before Guard
	// returned nil; it runs while the head is being signed.
	Guard(size uint64, root tlog.Hash, t time.Time) error
	// SaveHead keeps a signed head for auditors and backups. It is off
	// the critical path: called after its stamps were answered, at most
	// once per headSaveInterval, and with the last head at Close.
	SaveHead(sth *protocol.SignedTreeHead) error
}

// WithHeadStore makes the authority guard the tree of every head it
// signs before answering under it, so that at start a server can tell a
// log that lost published stamps, and save signed heads now and then.
// If Guard fails, the stamps of that head fail as if the signature had.
// The tree of the stored log is guarded, and the head New signs of it
// saved, before New returns.
func WithHeadStore(s HeadStore) Option {
	return func(a *Authority) { a.store = s }
}

// headSaveInterval spaces the saves of signed heads (HeadStore.SaveHead):
// each is a full file replacement (two fsyncs), and the guard, not the
// saved head, is what protects the log.
const headSaveInterval = time.Second

// treeID is a tree's size and root.
type treeID struct {
	size uint64
	root tlog.Hash
}

// guard makes the tree of size and root durable with the head store, if
// there is one, unless it is the tree last guarded (a fresh head's).
func (a *Authority) guard(size uint64, root tlog.Hash, t time.Time) error {
	id := treeID{size, root}
	if a.store == nil || id == a.guarded {
		return nil
	}
	if err := a.store.Guard(size, root, t); err != nil {
		return &headError{kind: ErrNotGuarded, what: "guarding the tree", size: size, err: err}
	}
	a.guarded = id
	return nil
}

// saveHead hands sth to the head store, if there is one.
func (a *Authority) saveHead(sth *protocol.SignedTreeHead) error {
	if a.store == nil {
		return nil
	}
	if err := a.store.SaveHead(sth); err != nil {
		return fmt.Errorf("authority: saving the tree head of size %d: %w", sth.Head.Size, err)
	}
	a.saved, a.savedAt = sth, time.Now()
	return nil
}

// deliverLoop answers the stamps of each group in order; it saves the
// last head and stops the authority once every group is answered.
func (a *Authority) deliverLoop() {
	defer close(a.stopped)
	for g := range a.groups {
		a.deliver(g)
		a.hookAt("answered")
		a.maybeSaveHead(false)
	}
	a.maybeSaveHead(true)
}

// maybeSaveHead saves the latest head if it is not saved yet and the
// last save is headSaveInterval old (or at once, if final). Its stamps
// are answered already: the guard protects them, so a failed save is
// only logged.
func (a *Authority) maybeSaveHead(final bool) {
	sth := a.head.Load()
	if sth == nil || sth == a.saved || (!final && time.Since(a.savedAt) < a.saveEvery) {
		return
	}
	a.savedAt = time.Now() // a failing save is retried once per interval, not per head
	if err := a.saveHead(sth); err != nil {
		log.Errorw("tree head not saved (its tree is guarded)", "size", sth.Head.Size, "err", err)
	}
}

func (a *Authority) hookAt(point string) {
	if a.hook != nil {
		a.hook(point)
	}
}

func (a *Authority) deliver(g *group) {
	var proofs []tlog.RecordProof
	var perr error
	if g.proofs {
		if proofs, perr = a.log.InclusionProofs(g.first, g.size-g.first, g.size); perr != nil {
			perr = fmt.Errorf("authority: inclusion proofs in the tree of size %d: %w", g.size, perr)
		}
	}
	// The tree is guarded here, while the pacer signs its head: its
	// batches are durable, and its size and root are known before the
	// signature. Groups come in order, so guards only grow. No reply
	// carries, and Head never returns, a head whose tree the server
	// could forget.
	var gerr error
	if g.size > 0 {
		t0 := time.Now()
		if gerr = a.guard(g.size, g.root, g.time); gerr != nil {
			log.Errorw("tree not guarded", "size", g.size, "err", gerr)
			a.health.headErr.Store(&gerr)
		} else {
			a.metrics.HeadSaved(time.Since(t0))
		}
		a.hookAt("guarded")
	}
	<-g.signed
	if g.err == nil && g.sth != nil {
		if g.err = gerr; g.err == nil {
			a.health.headErr.Store(nil)
			a.head.Store(g.sth)
		}
	}
	if g.size > 0 {
		a.hookAt("signed")
	}
	if perr != nil && g.err == nil {
		log.Errorw("inclusion proofs failed", "size", g.size, "err", perr)
	}
	if r := g.refreshed; r != nil {
		r.sth, r.err = a.head.Load(), g.err
		if g.err == nil && a.head.Load() != g.sth {
			r.err = errors.New("authority: the fresh head was not stored")
		}
		close(r.done)
	}
	// Counted before they are resolved, as in append.
	answered := 0
	for _, b := range g.batches {
		for _, r := range b.reqs {
			if !r.durable { // those are answered by the appender
				answered++
			}
		}
	}
	a.answered(answered)
	for _, b := range g.batches {
		for _, r := range b.reqs {
			switch {
			case r.durable:
			case r.fail != nil:
				r.resolve(nil, r.fail)
			case g.err != nil:
				r.resolve(nil, g.err)
			case perr != nil:
				r.resolve(nil, perr)
			default:
				r.resolve(&Stamp{Statement: r.stmt, RFC3161: r.tsa, Proof: proofs[r.serial-g.first], Head: g.sth, Leaf: r.leaf}, nil)
			}
		}
	}
}
