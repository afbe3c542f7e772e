package authority

import (
	"context"
	"crypto"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/tsnode/tsnode/protocol"
)

// Every head's tree is guarded before a reply carries the head, the
// stored log's included; when guarding fails, the stamps of that head
// fail and the head is not published. Signed heads are saved after
// answering, at most once per interval, and the last one at Close.
func TestHeadStore(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var guarded, saved []uint64
	fail := false
	store := testStore{
		guard: func(size uint64) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return errors.New("disk full")
			}
			guarded = append(guarded, size)
			return nil
		},
		save: func(sth *protocol.SignedTreeHead) error {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return errors.New("disk full")
			}
			saved = append(saved, sth.Head.Size)
			return nil
		},
	}
	requester := entry(t, "1000")
	lg := openLog(t, dir)
	a := newAuthority(t, lg, nil, WithHeadStore(store))
	for i := range 3 {
		st, err := await(t, a.Add(context.Background(), docEntry(requester, i)))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if len(guarded) == 0 || guarded[len(guarded)-1] < st.Head.Head.Size {
			t.Fatalf("reply with head of size %d, guarded %v", st.Head.Head.Size, guarded)
		}
		mu.Unlock()
	}
	mu.Lock()
	// Three heads within a second: the first one saved, on delivery.
	if len(saved) != 1 || saved[0] != 1 {
		t.Fatalf("saved %v within the interval, want [1]", saved)
	}
	fail = true
	mu.Unlock()
	_, err := await(t, a.Add(context.Background(), docEntry(requester, 3)))
	if !errors.Is(err, ErrNotGuarded) || !strings.Contains(err.Error(), "guarding the tree of size 4: disk full") {
		t.Fatalf("stamp whose tree could not be guarded: %v", err)
	}
	if h := a.Head(); h.Head.Size != 3 {
		t.Fatalf("published head of size %d, want 3 (the last guarded)", h.Head.Size)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	a.Close()
	if saved[len(saved)-1] != 3 {
		t.Fatalf("saved %v: Close saves the last head, of size 3", saved)
	}
	lg.Close()

	// At start, the stored log's tree is guarded and its head saved
	// before New returns, and a failure of either fails New.
	if _, err := New(openLog(t, t.TempDir()), serverSigner(t), entry(t, "server"), WithHeadStore(store)); err != nil {
		t.Fatalf("an empty log has no head to guard: %v", err)
	}
	lg = openLog(t, dir)
	mu.Lock()
	fail = true
	mu.Unlock()
	if _, err := New(lg, serverSigner(t), entry(t, "server"), WithHeadStore(store)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("New with a failing head store: %v", err)
	}
	lg.Close()
	mu.Lock()
	fail, guarded, saved = false, nil, nil
	mu.Unlock()
	b := newAuthority(t, openLog(t, dir), nil, WithHeadStore(store))
	if len(guarded) != 1 || guarded[0] != 4 || len(saved) != 1 || saved[0] != 4 || b.Head().Head.Size != 4 {
		t.Fatalf("start-up head: guarded %v, saved %v", guarded, saved)
	}
}

// failingSigner refuses every signature, as a lost HSM would.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("signer unreachable")
}

// A stamp whose batch is appended but whose head cannot be signed fails
// as ErrNotSigned (it is in the log: the requester is told so); no head
// is published.
func TestHeadNotSigned(t *testing.T) {
	lg := openLog(t, t.TempDir())
	a := newAuthority(t, lg, failingSigner{serverSigner(t)}, WithOnlineKeyLifetime(0))
	_, err := await(t, a.Add(context.Background(), docEntry(entry(t, "1000"), 0)))
	if !errors.Is(err, ErrNotSigned) || errors.Is(err, ErrNotGuarded) || !strings.Contains(err.Error(), "signing the tree head of size 1: identity key: signer unreachable") {
		t.Fatalf("stamp under a head that could not be signed: %v", err)
	}
	if lg.Size() != 1 || a.Head() != nil {
		t.Fatalf("log of %d leaves, head %v: want the stamp logged and no head", lg.Size(), a.Head())
	}
}
