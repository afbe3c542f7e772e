package node

import (
	"errors"

	"github.com/tsnode/tsnode/node/logstore"
)

// Backup writes a consistent copy of the running server's data
// directory into out, a new directory (logstore.Backup): a server can
// start on it, and tsnode log check checks it. It returns the number
// of stamps copied. Stamping goes on meanwhile.
func (s *Service) Backup(out string) (uint64, error) {
	if s.log == nil {
		return 0, errors.New("backup: only a server has a log to back up")
	}
	return logstore.Backup(s.log, s.dataDir, out)
}
