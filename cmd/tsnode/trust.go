package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/protocol"
)

// trustFlag is the repeatable --trust ID flag: the authorities whose
// signatures count. Without it, the seed's authority id alone.
type trustFlag struct {
	ids []identity.ID
	set bool
}

func addTrustFlag(fs *flag.FlagSet, usage string) *trustFlag {
	t := &trustFlag{ids: []identity.ID{identity.ServerID}}
	fs.Var(t, "trust", usage)
	return t
}

func (t *trustFlag) String() string {
	if t == nil {
		return ""
	}
	s := make([]string, len(t.ids))
	for i, id := range t.ids {
		s[i] = string(id)
	}
	return strings.Join(s, ",")
}

func (t *trustFlag) Set(v string) error {
	id, err := identity.ParseID(v)
	if err != nil {
		return err
	}
	if !t.set {
		t.ids, t.set = nil, true
	}
	t.ids = append(t.ids, id)
	return nil
}

// policy builds the trust policy of the flag's authorities from the
// keys directory's current keys and their retired keys.
func (t *trustFlag) policy(dir *identity.Directory, retired []protocol.RetiredKey) (*protocol.Trust, error) {
	trust, err := protocol.NewTrust(dir, retired, t.ids...)
	if err != nil {
		return nil, fmt.Errorf("--trust: %w", err)
	}
	return trust, nil
}
