package merklelog

import (
	"errors"
	"slices"
	"testing"

	"github.com/tsnode/tsnode/protocol"

	"golang.org/x/mod/sumdb/tlog"
)

var testBatches = []int{1, 2, 3, 5, 8, 13, 4, 1, 7}

func TestInclusionProofs(t *testing.T) {
	l, leaves, roots := buildLog(t, t.TempDir(), "a", testBatches)
	defer l.Close()
	n := l.Size()

	// Every leaf verifies against every later tree size's root.
	for size := uint64(1); size <= n; size++ {
		for i := range size {
			p, err := l.InclusionProof(i, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, size, err)
			}
			if err := protocol.VerifyInclusion(leaves[i], i, size, roots[size], p); err != nil {
				t.Fatalf("protocol.VerifyInclusion(%d, %d): %v", i, size, err)
			}
		}
	}

	mustFail := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, protocol.ErrBadProof) {
			t.Fatalf("%s: got %v, want protocol.ErrBadProof", what, err)
		}
	}
	type tc struct {
		name  string
		check func(t *testing.T, i, size uint64, p tlog.RecordProof)
	}
	tests := []tc{
		{"leaf byte", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			for j := range leaves[i] {
				mustFail(t, "flipped leaf", protocol.VerifyInclusion(flip(leaves[i], j), i, size, roots[size], p))
			}
		}},
		{"proof byte", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			for k := range p {
				for j := range tlog.HashSize {
					q := slices.Clone(p)
					q[k][j] ^= 1
					mustFail(t, "flipped proof", protocol.VerifyInclusion(leaves[i], i, size, roots[size], q))
				}
			}
		}},
		{"root byte", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			for j := range tlog.HashSize {
				r := roots[size]
				r[j] ^= 1
				mustFail(t, "flipped root", protocol.VerifyInclusion(leaves[i], i, size, r, p))
			}
		}},
		{"wrong index", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			for j := range size + 1 {
				if j != i {
					mustFail(t, "wrong index", protocol.VerifyInclusion(leaves[i], j, size, roots[size], p))
				}
			}
		}},
		{"wrong leaf", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			mustFail(t, "other leaf", protocol.VerifyInclusion(leaves[(i+1)%size], i, size, roots[size], p))
		}},
		{"proof length", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			mustFail(t, "extra hash", protocol.VerifyInclusion(leaves[i], i, size, roots[size], append(slices.Clone(p), tlog.Hash{})))
			if len(p) > 0 {
				mustFail(t, "truncated", protocol.VerifyInclusion(leaves[i], i, size, roots[size], p[:len(p)-1]))
			}
		}},
		{"other size", func(t *testing.T, i, size uint64, p tlog.RecordProof) {
			if size < n {
				mustFail(t, "next size", protocol.VerifyInclusion(leaves[i], i, size+1, roots[size+1], p))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for size := uint64(2); size <= n; size++ {
				for i := range size {
					p, err := l.InclusionProof(i, size)
					if err != nil {
						t.Fatal(err)
					}
					tt.check(t, i, size, p)
				}
			}
		})
	}
}

func TestConsistencyProofs(t *testing.T) {
	dir := t.TempDir()
	l, _, roots := buildLog(t, dir, "a", testBatches)
	defer l.Close()
	n := l.Size()

	for old := uint64(1); old <= n; old++ {
		for nw := old; nw <= n; nw++ {
			p, err := l.ConsistencyProof(old, nw)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", old, nw, err)
			}
			if err := protocol.VerifyConsistency(old, roots[old], nw, roots[nw], p); err != nil {
				t.Fatalf("protocol.VerifyConsistency(%d, %d): %v", old, nw, err)
			}
		}
	}

	mustFail := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, protocol.ErrInconsistent) {
			t.Fatalf("%s: got %v, want protocol.ErrInconsistent", what, err)
		}
	}
	tests := []struct {
		name  string
		check func(t *testing.T, old, nw uint64, p tlog.TreeProof)
	}{
		{"proof byte", func(t *testing.T, old, nw uint64, p tlog.TreeProof) {
			for k := range p {
				for j := range tlog.HashSize {
					q := slices.Clone(p)
					q[k][j] ^= 1
					mustFail(t, "flipped proof", protocol.VerifyConsistency(old, roots[old], nw, roots[nw], q))
				}
			}
		}},
		{"old root byte", func(t *testing.T, old, nw uint64, p tlog.TreeProof) {
			for j := range tlog.HashSize {
				r := roots[old]
				r[j] ^= 1
				mustFail(t, "flipped old root", protocol.VerifyConsistency(old, r, nw, roots[nw], p))
			}
		}},
		{"new root byte", func(t *testing.T, old, nw uint64, p tlog.TreeProof) {
			for j := range tlog.HashSize {
				r := roots[nw]
				r[j] ^= 1
				mustFail(t, "flipped new root", protocol.VerifyConsistency(old, roots[old], nw, r, p))
			}
		}},
		{"swapped sizes", func(t *testing.T, old, nw uint64, p tlog.TreeProof) {
			if old < nw {
				mustFail(t, "swapped", protocol.VerifyConsistency(nw, roots[nw], old, roots[old], p))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for old := uint64(1); old <= n; old++ {
				for nw := old; nw <= n; nw++ {
					p, err := l.ConsistencyProof(old, nw)
					if err != nil {
						t.Fatal(err)
					}
					tt.check(t, old, nw, p)
				}
			}
		})
	}

	t.Run("fork", func(t *testing.T) {
		// Log b shares the first 3 batches (6 leaves) with l, then diverges.
		const shared = 6
		b, _, rootsB := buildLog(t, t.TempDir(), "a", testBatches[:3])
		defer b.Close()
		for _, n := range testBatches[3:] {
			appendN(t, b, n, t0, "b")
		}
		if b.Size() != n {
			t.Fatalf("forked size %d, want %d", b.Size(), n)
		}
		for nw := uint64(shared + 1); nw <= n; nw++ {
			rb, err := b.TreeHash(nw)
			if err != nil {
				t.Fatal(err)
			}
			if rb == roots[nw] {
				t.Fatalf("fork has same root at size %d", nw)
			}
			for old := uint64(1); old <= nw; old++ {
				pb, err := b.ConsistencyProof(old, nw)
				if err != nil {
					t.Fatal(err)
				}
				err = protocol.VerifyConsistency(old, roots[old], nw, rb, pb)
				switch {
				case old <= shared && err != nil:
					// Shared prefix: the fork really extends it.
					t.Fatalf("shared prefix %d -> fork %d: %v", old, nw, err)
				case old <= shared && rootsB[old] != roots[old]:
					t.Fatalf("shared prefix roots differ at %d", old)
				case old > shared:
					mustFail(t, "fork", err)
					// The honest log's proof does not link to the fork either.
					pa, err := l.ConsistencyProof(old, nw)
					if err != nil {
						t.Fatal(err)
					}
					mustFail(t, "fork, honest proof", protocol.VerifyConsistency(old, roots[old], nw, rb, pa))
				}
			}
		}
	})
}

func TestVerifyBadSizes(t *testing.T) {
	var h tlog.Hash
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"inclusion index == size", protocol.VerifyInclusion(nil, 3, 3, h, nil), protocol.ErrBadProof},
		{"inclusion size 0", protocol.VerifyInclusion(nil, 0, 0, h, nil), protocol.ErrBadProof},
		{"inclusion huge size", protocol.VerifyInclusion(nil, 0, 1<<63, h, nil), protocol.ErrBadProof},
		{"consistency old 0", protocol.VerifyConsistency(0, h, 5, h, nil), protocol.ErrInconsistent},
		{"consistency old > new", protocol.VerifyConsistency(6, h, 5, h, nil), protocol.ErrInconsistent},
		{"consistency huge", protocol.VerifyConsistency(1, h, 1<<63, h, nil), protocol.ErrInconsistent},
		{"consistency same size different roots", protocol.VerifyConsistency(4, h, 4, tlog.Hash{1}, nil), protocol.ErrInconsistent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.want) {
				t.Fatalf("got %v, want %v", tt.err, tt.want)
			}
		})
	}
}
