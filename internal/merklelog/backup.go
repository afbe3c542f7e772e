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
// reopenEvery leaves) and bbolt's growth of its mapping until it ends.
func (l *Log) Backup(w io.Writer) (size uint64, err error) {
	err = l.view(func(n uint64, _ tlog.HashReader, tx *bolt.Tx) error {
		size = n
		_, err := tx.WriteTo(w)
		return err
	})
	return size, err
}
