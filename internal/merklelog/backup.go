package merklelog

import (
	"io"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// Backup writes a consistent copy of the whole bbolt file to w, as of
// one read transaction (bbolt's Tx.WriteTo), while appends go on: the
// copy is a log of size leaves that Open accepts. It is how a running
// server backs up its log; another process cannot, since the server
// holds the file's lock. A long copy delays a reopen (every
// reopenEvery leaves) and bbolt's growth of its mapping, and so any
// append that needs the file to grow, until it ends.
func (l *Log) Backup(w io.Writer) (size uint64, err error) {
	err = l.view(func(n uint64, _ tlog.HashReader, tx *bolt.Tx) error {
		size = n
		pw := &metaParity{w: w, pageSize: tx.DB().Info().PageSize, odd: tx.ID()%2 == 1}
		if _, err := tx.WriteTo(pw); err != nil {
			return err
		}
		return pw.flush()
	})
	return size, err
}

// metaParity passes Tx.WriteTo's output through, fixing its two meta
// pages. WriteTo writes the transaction's meta (txid t) on page 0 and
// the same with txid t-1 on page 1; a bbolt commit puts txid t on page
// t%2, and checkFile insists on that. For an odd t the two metas swap
// pages: each keeps its checksum, which covers the meta, not the page
// header that holds the page id.
type metaParity struct {
	w        io.Writer
	pageSize int
	odd      bool
	head     []byte // the first two pages, until complete
	done     bool
}

func (m *metaParity) Write(p []byte) (int, error) {
	if m.done {
		return m.w.Write(p)
	}
	n := len(p)
	need := 2*m.pageSize - len(m.head)
	if len(p) < need {
		m.head = append(m.head, p...)
		return n, nil
	}
	m.head = append(m.head, p[:need]...)
	if err := m.flush(); err != nil {
		return 0, err
	}
	if _, err := m.w.Write(p[need:]); err != nil {
		return 0, err
	}
	return n, nil
}

// flush writes the meta pages once, fixed.
func (m *metaParity) flush() error {
	if m.done {
		return nil
	}
	m.done = true
	if m.odd && len(m.head) == 2*m.pageSize {
		a := m.head[pageHeaderSize : pageHeaderSize+metaSize]
		b := m.head[m.pageSize+pageHeaderSize : m.pageSize+pageHeaderSize+metaSize]
		for i := range a {
			a[i], b[i] = b[i], a[i]
		}
	}
	_, err := m.w.Write(m.head)
	return err
}
