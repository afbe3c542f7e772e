package protocol

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// memTree is a Merkle tree in memory, hashed by golang.org/x/mod/sumdb/tlog
// (what the server's log uses), for proofs between any two sizes.
type memTree struct {
	stored []tlog.Hash
	n      int64
}

func (m *memTree) ReadHashes(ix []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ix))
	for i, x := range ix {
		if x >= int64(len(m.stored)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = m.stored[x]
	}
	return out, nil
}

// newMemTree is a tree of the leaves "<prefix> i" for i < n, except that
// the first shared leaves are "common i".
func newMemTree(t testing.TB, prefix string, shared, n int) *memTree {
	t.Helper()
	m := &memTree{}
	for i := range n {
		leaf := fmt.Appendf(nil, "%s %d", prefix, i)
		if i < shared {
			leaf = fmt.Appendf(nil, "common %d", i)
		}
		hs, err := tlog.StoredHashes(m.n, leaf, m)
		if err != nil {
			t.Fatal(err)
		}
		m.stored = append(m.stored, hs...)
		m.n++
	}
	return m
}

func (m *memTree) root(t testing.TB, size uint64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(int64(size), m)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (m *memTree) proof(t testing.TB, from, to uint64) tlog.TreeProof {
	t.Helper()
	p, err := tlog.ProveTree(int64(to), int64(from), m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// path is the consistency path from size from to size to in m.
func (m *memTree) path(t testing.TB, from, to uint64) []tlog.Hash {
	t.Helper()
	return ConsistencyPath(from, m.proof(t, from, to), m.root(t, from))
}

// head is m's head of size, signed by "server" and dated at.
func (m *memTree) head(t testing.TB, size uint64, at time.Time) *SignedTreeHead {
	t.Helper()
	return headAs(t, "server", size, m.root(t, size), at)
}

func TestPathRootsMatchTlog(t *testing.T) {
	const max = 40
	tree := newMemTree(t, "leaf", 0, max)
	for n := uint64(2); n <= max; n++ {
		rn := tree.root(t, n)
		for m := uint64(1); m < n; m++ {
			rm := tree.root(t, m)
			proof := tree.proof(t, m, n)
			path := ConsistencyPath(m, proof, rm)
			pow2 := m&(m-1) == 0
			switch {
			case pow2 && (len(path) != len(proof)+1 || path[0] != rm):
				t.Fatalf("%d -> %d: m is a power of two, the path does not start with the prefix root", m, n)
			case !pow2 && len(path) != len(proof):
				t.Fatalf("%d -> %d: the path is not the proof", m, n)
			}
			fr, sr, ok := PathRoots(m, n, path)
			if !ok || fr != rm || sr != rn {
				t.Fatalf("PathRoots(%d, %d) = %x, %x, %v; want %x, %x, true", m, n, fr[:4], sr[:4], ok, rm[:4], rn[:4])
			}
			if err := VerifyConsistency(m, rm, n, rn, proof); err != nil {
				t.Fatalf("%d -> %d: the proof does not verify: %v", m, n, err)
			}
			// Any other length is refused: the length follows from m and n.
			if _, _, ok := PathRoots(m, n, path[:len(path)-1]); ok {
				t.Fatalf("%d -> %d: a path one hash short is ok", m, n)
			}
			if _, _, ok := PathRoots(m, n, append(append([]tlog.Hash(nil), path...), rn)); ok {
				t.Fatalf("%d -> %d: a path one hash long is ok", m, n)
			}
			// A changed hash changes a root.
			for i := range path {
				bad := append([]tlog.Hash(nil), path...)
				bad[i][0] ^= 1
				fr, sr, ok := PathRoots(m, n, bad)
				if ok && fr == rm && sr == rn {
					t.Fatalf("%d -> %d: hash %d changed, same roots", m, n, i)
				}
			}
			// The path does not fit another second size with the same
			// roots.
			if m+1 < n {
				if fr, sr, ok := PathRoots(m+1, n, path); ok && fr == tree.root(t, m+1) && sr == rn {
					t.Fatalf("%d -> %d: the path also proves %d", m, n, m+1)
				}
			}
		}
	}
	for _, c := range []struct{ m, n uint64 }{{0, 5}, {5, 5}, {6, 5}, {0, 0}, {1, 1}} {
		if _, _, ok := PathRoots(c.m, c.n, []tlog.Hash{{}, {}, {}}); ok {
			t.Errorf("PathRoots(%d, %d) is ok", c.m, c.n)
		}
	}
	if _, _, ok := PathRoots(3, 5, nil); ok {
		t.Error("an empty path is ok")
	}
	// The proof alone (the prefix root left out) is refused when m is a
	// power of two.
	if _, _, ok := PathRoots(4, 7, tree.proof(t, 4, 7)); ok {
		t.Error("a path without the prefix root is ok")
	}
}

func TestConsistencyPathCopies(t *testing.T) {
	proof := tlog.TreeProof{hashOf(1), hashOf(2)}
	p := ConsistencyPath(3, proof, hashOf(9))
	p[0] = hashOf(7)
	if proof[0] != hashOf(1) {
		t.Fatal("ConsistencyPath shares the proof's array")
	}
}

func TestCheckCosignable(t *testing.T) {
	tree := newMemTree(t, "leaf", 0, 20)
	other := newMemTree(t, "other", 3, 20)
	trust := trustOf(t, witnessDir(t))
	now := logTime
	const tol = time.Minute
	last := tree.head(t, 5, now.Add(-10*time.Second))
	next := tree.head(t, 9, now.Add(-time.Second))
	proof := tree.proof(t, 5, 9)

	ok := []struct {
		name       string
		last, next *SignedTreeHead
		proof      tlog.TreeProof
	}{
		{"first head", nil, next, nil},
		{"first head, tolerance ahead", nil, tree.head(t, 9, now.Add(tol)), nil},
		{"first head, tolerance behind", nil, tree.head(t, 9, now.Add(-tol)), nil},
		{"a larger head", last, next, proof},
		{"the same head again", last, last, nil},
		{"the same tree re-signed later", last, tree.head(t, 5, now), nil},
		{"the same time", last, tree.head(t, 9, last.Head.Time), proof},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			if err := trust.CheckCosignable(c.last, c.next, c.proof, now, tol); err != nil {
				t.Fatal(err)
			}
		})
	}

	server := entry(t, "server")
	badSig := tree.head(t, 9, now)
	badSig = &SignedTreeHead{Head: badSig.Head, Encoded: badSig.Encoded, Signature: flip(badSig.Signature, 5)}
	damaged := append(tlog.TreeProof(nil), proof...)
	damaged[0][0] ^= 1
	bad := []struct {
		name       string
		trust      *Trust
		last, next *SignedTreeHead
		proof      tlog.TreeProof
		sentinel   error
		msg        string
	}{
		{"clock behind", trust, nil, tree.head(t, 9, now.Add(-tol-time.Nanosecond)), nil, ErrHeadTime, "1m0.000000001s behind our clock (tolerance 1m0s)"},
		{"clock ahead", trust, nil, tree.head(t, 9, now.Add(2*tol)), nil, ErrHeadTime, "2m0s ahead of our clock"},
		{"clock behind, with a last head", trust, last, tree.head(t, 9, now.Add(-2*tol)), proof, ErrHeadTime, "behind our clock"},
		{"earlier than the last", trust, tree.head(t, 5, now), tree.head(t, 9, now.Add(-time.Second)), proof, ErrHeadTime, "before the last head cosigned (size 5, " + FormatTime(now) + ")"},
		{"the same tree re-signed earlier", trust, tree.head(t, 5, now), tree.head(t, 5, now.Add(-time.Second)), nil, ErrHeadTime, "before the last head cosigned"},
		{"smaller", trust, next, tree.head(t, 5, now), nil, ErrInconsistent, "the old head's size 9 is larger than the new head's 5"},
		{"fork", trust, last, headAs(t, "server", 5, other.root(t, 5), now), nil, ErrInconsistent, "two different trees of size 5 (a forked log)"},
		{"another log", trust, last, headAs(t, "server", 9, other.root(t, 9), now), other.proof(t, 5, 9), ErrInconsistent, "size 5 -> 9"},
		{"bad proof", trust, last, next, damaged, ErrInconsistent, "size 5 -> 9"},
		{"first head, the empty tree", trust, nil, tree.head(t, 0, now), nil, ErrInconsistent, "a head of the empty tree"},
		{"no proof", trust, last, next, nil, ErrInconsistent, "size 5 -> 9"},
		{"proof of other sizes", trust, last, next, tree.proof(t, 4, 9), ErrInconsistent, "size 5 -> 9"},
		{"same size with a proof", trust, last, tree.head(t, 5, now), proof, ErrInconsistent, "two heads of size 5 need no proof"},
		{"untrusted signer", trust, nil, headAs(t, "1000", 9, tree.root(t, 9), now), nil, ErrUntrustedSigner, "1000 is not a trusted authority (trusted: server)"},
		{"untrusted signer after a head", trust, last, headAs(t, "1000", 9, tree.root(t, 9), now), proof, ErrUntrustedSigner, "1000 is not a trusted authority"},
		{"signed as server by another key", trust, nil, signHead(t, "outsider", &TreeHead{ServerID: "server", ServerPeer: entry(t, "outsider").PeerID, Size: 9, Root: tree.root(t, 9), Time: now}), nil, ErrWrongServerKey, "signed as server by peer"},
		{"signed by another key in the server's name", trust, nil, signHead(t, "outsider", &TreeHead{ServerID: "server", ServerPeer: server.PeerID, Size: 9, Root: tree.root(t, 9), Time: now}), nil, ErrBadSignature, "the tree head of size 9 does not verify"},
		{"signature changed", trust, nil, badSig, nil, ErrBadSignature, "does not verify with the key of server"},
		{"another authority than the last", trustOf(t, witnessDir(t), "server", "1000"), last, headAs(t, "1000", 9, tree.root(t, 9), now), proof, ErrDifferentServers, "the last head cosigned is of server, this one of 1000"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.trust.CheckCosignable(c.last, c.next, c.proof, now, tol), c.sentinel, c.msg)
		})
	}
}
