package authority

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tsnode/tsnode/protocol"
)

// Every head is saved before a reply carries it, the head of the stored
// log included; when saving fails, the stamps of that head fail and the
// head is not published.
func TestHeadStore(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var saved []uint64
	fail := false
	save := func(sth *protocol.SignedTreeHead) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("disk full")
		}
		saved = append(saved, sth.Head.Size)
		return nil
	}
	requester := entry(t, "1000")
	lg := openLog(t, dir)
	a := newAuthority(t, lg, nil, WithHeadStore(save))
	for i := range 3 {
		st, err := await(t, a.Add(context.Background(), docEntry(requester, i)))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if len(saved) == 0 || saved[len(saved)-1] < st.Head.Head.Size {
			t.Fatalf("reply with head of size %d, saved %v", st.Head.Head.Size, saved)
		}
		mu.Unlock()
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	_, err := await(t, a.Add(context.Background(), docEntry(requester, 3)))
	if err == nil || !strings.Contains(err.Error(), "saving the tree head of size 4") {
		t.Fatalf("stamp whose head could not be saved: %v", err)
	}
	if h := a.Head(); h.Head.Size != 3 {
		t.Fatalf("published head of size %d, want 3 (the last saved)", h.Head.Size)
	}
	a.Close()
	lg.Close()

	// At start, the head of the stored log is saved before New returns,
	// and a failure to save it fails New.
	if _, err := New(openLog(t, t.TempDir()), serverSigner(t), entry(t, "server"), WithHeadStore(save)); err != nil {
		t.Fatalf("an empty log has no head to save: %v", err)
	}
	lg = openLog(t, dir)
	if _, err := New(lg, serverSigner(t), entry(t, "server"), WithHeadStore(save)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("New with a failing head store: %v", err)
	}
	lg.Close()
	mu.Lock()
	fail, saved = false, nil
	mu.Unlock()
	b := newAuthority(t, openLog(t, dir), nil, WithHeadStore(save))
	if len(saved) != 1 || saved[0] != 4 || b.Head().Head.Size != 4 {
		t.Fatalf("start-up head: saved %v", saved)
	}
}
