package merklelog

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// InclusionProofs returns the proofs of leaves first..first+count-1 in the
// tree of the given size, in one read transaction with the hashes shared
// between proofs read once: what a server needs to answer a whole batch.
func (l *Log) InclusionProofs(first, count, size uint64) ([]tlog.RecordProof, error) {
	proofs := make([]tlog.RecordProof, count)
	err := l.view(func(cur uint64, r tlog.HashReader, _ *bolt.Tx) error {
		if count == 0 || first+count > size || size > cur {
			return fmt.Errorf("%w: inclusion of leaves %d..%d in tree size %d (log size %d)", ErrOutOfRange, first, first+count, size, cur)
		}
		cached := &memoHashReader{r: r, memo: make(map[int64]tlog.Hash)}
		for i := range proofs {
			p, err := tlog.ProveRecord(int64(size), int64(first)+int64(i), cached)
			if err != nil {
				return err
			}
			proofs[i] = p
		}
		return nil
	})
	return proofs, err
}

// memoHashReader remembers the hashes it has read during one batch.
type memoHashReader struct {
	r    tlog.HashReader
	memo map[int64]tlog.Hash
}

func (m *memoHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var missing []int64
	for _, ix := range indexes {
		if _, ok := m.memo[ix]; !ok {
			missing = append(missing, ix)
		}
	}
	if len(missing) > 0 {
		hs, err := m.r.ReadHashes(missing)
		if err != nil {
			return nil, err
		}
		for i, ix := range missing {
			m.memo[ix] = hs[i]
		}
	}
	for i, ix := range indexes {
		out[i] = m.memo[ix]
	}
	return out, nil
}
