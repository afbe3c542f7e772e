package protocol

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// What a witness checks before it cosigns (PROTOCOL.md §13.3), and what
// proves that an authority signed two heads that cannot both be true
// (§13.5). The witness's storage and network live in node/witness; the
// rules live here, once.

// CheckCosignable checks whether a witness whose last cosigned head of
// this authority is last (nil: none yet) may cosign next, now, given a
// consistency proof from last's size to next's: next is signed by a
// trusted authority (the trust rule, §10.2), dated within tolerance of
// now, no earlier than last, of the same authority, no smaller, and the
// proof holds (equal sizes: equal roots).
func (t *Trust) CheckCosignable(last, next *SignedTreeHead, proof tlog.TreeProof, now time.Time, tolerance time.Duration) error {
	if err := t.checkHeadSignature(next, nil); err != nil {
		return err
	}
	h := next.Head
	if h.Size == 0 {
		return fmt.Errorf("%w: a head of the empty tree, which an authority never signs (§5.1)", ErrInconsistent)
	}
	if d := h.Time.Sub(now); absDuration(d) > tolerance {
		dir := "ahead of"
		if d < 0 {
			dir, d = "behind", -d
		}
		return fmt.Errorf("%w: the head of size %d is dated %s, %v %s our clock (tolerance %v)", ErrHeadTime, h.Size, FormatTime(h.Time), d, dir, tolerance)
	}
	if last == nil {
		return nil
	}
	l := last.Head
	switch {
	case l.ServerID != h.ServerID:
		return fmt.Errorf("%w: the last head cosigned is of %s, this one of %s", ErrDifferentServers, l.ServerID, h.ServerID)
	case h.Time.Before(l.Time):
		return fmt.Errorf("%w: the head of size %d is dated %s, before the last head cosigned (size %d, %s)", ErrHeadTime, h.Size, FormatTime(h.Time), l.Size, FormatTime(l.Time))
	}
	return CheckConsistency(l, h, proof)
}

// Equivocation kinds: what an evidence file proves.
const (
	// EquivocationFork: two heads of one size with different roots.
	EquivocationFork = "fork"
	// EquivocationInconsistent: a consistency path that leads to the
	// larger head's root and yields another root for the smaller head.
	EquivocationInconsistent = "inconsistent"
	// EquivocationRollback: a smaller head dated after a larger one: the
	// log shrank.
	EquivocationRollback = "rollback"
)

// Evidence is two signed heads of one authority that cannot both be true,
// with what shows it: First is the smaller (or of equal size), Path the
// consistency path (ConsistencyPath) from First's size to Second's when
// the proof is a path.
type Evidence struct {
	First, Second *SignedTreeHead
	Path          []tlog.Hash
}

// FindEquivocation returns the evidence that heads a and b (signature
// checked, same authority) cannot both be true, in either order, with
// path (may be nil) a consistency path between their sizes taken from
// the log that signed the larger; nil when they are not proven to be.
func FindEquivocation(a, b *SignedTreeHead, path []tlog.Hash) *Evidence {
	if a.Head.Size > b.Head.Size {
		a, b = b, a
	}
	e := &Evidence{First: a, Second: b}
	if e.Kind() != "" {
		return e
	}
	e.Path = path
	if e.Kind() != "" {
		return e
	}
	return nil
}

// Kind says what e proves of its two heads, or "" if nothing. Signatures
// are not checked here (Verify does).
func (e *Evidence) Kind() string {
	f, s := e.First.Head, e.Second.Head
	switch {
	case f.ServerID != s.ServerID:
		return ""
	case f.Size == s.Size && f.Root != s.Root:
		return EquivocationFork
	case f.Size >= s.Size || f.Size == 0:
		return ""
	case f.Time.After(s.Time):
		return EquivocationRollback
	}
	if len(e.Path) == 0 {
		return ""
	}
	fr, sr, ok := PathRoots(f.Size, s.Size, e.Path)
	if ok && sr == s.Root && fr != f.Root {
		return EquivocationInconsistent
	}
	return ""
}

// Verify checks the evidence offline: both heads pass the trust rule of
// §10.2 and are of one authority, and they cannot both be true. It returns
// what is proven.
func (e *Evidence) Verify(trust *Trust) (string, error) {
	for _, h := range []struct {
		name string
		sth  *SignedTreeHead
	}{{"first", e.First}, {"second", e.Second}} {
		if err := trust.checkHeadSignature(h.sth, nil); err != nil {
			return "", fmt.Errorf("%s head: %w", h.name, err)
		}
	}
	f, s := e.First.Head, e.Second.Head
	switch {
	case f.ServerID != s.ServerID:
		return "", fmt.Errorf("%w: the first head is of %s, the second of %s", ErrDifferentServers, f.ServerID, s.ServerID)
	case f.Size > s.Size:
		return "", fmt.Errorf("%w: the first head's size %d is larger than the second's %d (the smaller goes first)", ErrMalformedEvidence, f.Size, s.Size)
	}
	if k := e.Kind(); k != "" {
		return k, nil
	}
	switch {
	case f.Size == s.Size:
		return "", fmt.Errorf("%w: two heads of size %d with the same root", ErrNoEquivocation, f.Size)
	case len(e.Path) == 0:
		return "", fmt.Errorf("%w: heads of sizes %d and %d, in order of time, and no consistency path", ErrNoEquivocation, f.Size, s.Size)
	}
	fr, sr, ok := PathRoots(f.Size, s.Size, e.Path)
	switch {
	case !ok:
		return "", fmt.Errorf("%w: a path of %d hashes cannot be between sizes %d and %d", ErrNoEquivocation, len(e.Path), f.Size, s.Size)
	case sr != s.Root:
		return "", fmt.Errorf("%w: the path leads to root %x, not the second head's %x", ErrNoEquivocation, sr[:], s.Root[:])
	default: // fr == f.Root
		return "", fmt.Errorf("%w: the path shows the first head is a prefix of the second (root %x)", ErrNoEquivocation, fr[:])
	}
}
