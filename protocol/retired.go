package protocol

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tsnode/tsnode/identity"
)

// LoadRetiredKeys reads the retired keys of keysDir/public/retired/
// (PROTOCOL.md §1.6): for each <id>-<peer ID>.pem, the retired public
// key, and <id>-<peer ID>.rotation, the rotation statement it signed. A
// missing folder means no retired keys. Each key must be RSA-4096 with
// the peer ID of its file name; its statement must be of the file's id
// and old peer ID and verify with it; its successor must be dir's current
// key of the id or a retired key of the id retired later; and it must not
// also be a current key of dir. Every failure is an error naming the
// file. The keys come sorted by id, then by rotation time.
func LoadRetiredKeys(keysDir string, dir *identity.Directory) ([]RetiredKey, error) {
	folder := filepath.Join(keysDir, "public", identity.RetiredDir)
	entries, err := os.ReadDir(folder)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read retired keys: %w", err)
	}
	type pair struct{ pem, rotation bool }
	stems := map[string]*pair{}
	var order []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue // sub-folders; temporary files of interrupted writes
		}
		stem, isPEM := strings.CutSuffix(name, identity.RetiredKeySuffix)
		if !isPEM {
			var ok bool
			if stem, ok = strings.CutSuffix(name, identity.RetiredRotationSuffix); !ok {
				continue
			}
		}
		p := stems[stem]
		if p == nil {
			p = &pair{}
			stems[stem] = p
			order = append(order, stem)
		}
		if isPEM {
			p.pem = true
		} else {
			p.rotation = true
		}
	}
	sort.Strings(order)
	var keys []RetiredKey
	for _, stem := range order {
		p := stems[stem]
		pemPath := filepath.Join(folder, stem+identity.RetiredKeySuffix)
		rotPath := filepath.Join(folder, stem+identity.RetiredRotationSuffix)
		switch {
		case !p.rotation:
			return nil, fmt.Errorf("%s: retired key without its rotation statement %s", pemPath, filepath.Base(rotPath))
		case !p.pem:
			return nil, fmt.Errorf("%s: rotation statement without its retired key %s", rotPath, filepath.Base(pemPath))
		}
		k, err := loadRetiredKey(stem, pemPath, rotPath, dir)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if keys[i].ID != keys[j].ID {
			return keys[i].ID < keys[j].ID
		}
		return keys[i].RetiredAt.Before(keys[j].RetiredAt)
	})
	if err := checkSuccessors(keys, dir, folder); err != nil {
		return nil, err
	}
	return keys, nil
}

func loadRetiredKey(stem, pemPath, rotPath string, dir *identity.Directory) (RetiredKey, error) {
	id, pid, err := identity.ParseRetiredName(stem)
	if err != nil {
		return RetiredKey{}, fmt.Errorf("%s: %w", pemPath, err)
	}
	pub, err := identity.LoadPublicKey(pemPath)
	if err != nil {
		return RetiredKey{}, err
	}
	keyPeer, err := identity.PeerIDFromPublicKey(pub)
	if err != nil {
		return RetiredKey{}, fmt.Errorf("%s: %w", pemPath, err)
	}
	if keyPeer != pid {
		return RetiredKey{}, fmt.Errorf("%s: the key is peer %s, the file name says %s", pemPath, keyPeer, pid)
	}
	if dir.Has(pid) {
		e, _ := dir.ByPeer(pid)
		return RetiredKey{}, fmt.Errorf("%s: this retired key is also the current key of %s in public/ (an interrupted tsnode keygen --rotate? run it again)", pemPath, e.ID)
	}
	s, err := ReadRotationFile(rotPath)
	if err != nil {
		return RetiredKey{}, err
	}
	r := s.Rotation
	if r.ID != id {
		return RetiredKey{}, fmt.Errorf("%s: %w: the statement is of id %s, the file name says %s", rotPath, ErrBadRotation, r.ID, id)
	}
	if r.OldPeer != pid {
		return RetiredKey{}, fmt.Errorf("%s: %w: old_peer_id is %s, the file name says %s", rotPath, ErrBadRotation, r.OldPeer, pid)
	}
	if err := s.Verify(pub); err != nil {
		return RetiredKey{}, fmt.Errorf("%s: %w", rotPath, err)
	}
	return RetiredKey{ID: id, PublicKey: pub, PeerID: pid, RetiredAt: r.Time, Successor: r.NewPeer}, nil
}

// checkSuccessors checks that each retired key's successor is the
// current key of its id or a key of its id retired later, and that no
// two retired keys of an id name the same successor. keys are sorted by
// id and rotation time.
func checkSuccessors(keys []RetiredKey, dir *identity.Directory, folder string) error {
	named := map[string]bool{}
	for i, k := range keys {
		rotPath := filepath.Join(folder, string(k.ID)+"-"+k.PeerID.String()+identity.RetiredRotationSuffix)
		key := string(k.ID) + "/" + k.Successor.String()
		if named[key] {
			return fmt.Errorf("%s: %w: another retired key of %s also names %s as its successor", rotPath, ErrBadRotation, k.ID, k.Successor)
		}
		named[key] = true
		if cur, err := dir.Lookup(k.ID); err == nil && cur.PeerID == k.Successor {
			continue
		}
		found := false
		for _, l := range keys[i+1:] {
			if l.ID == k.ID && l.PeerID == k.Successor && l.RetiredAt.After(k.RetiredAt) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: %w: successor %s is neither the current key of %s in public/ nor a key of %s retired later (copy public/%s.pem and public/%s/ from the host that rotated the key)",
				rotPath, ErrBadRotation, k.Successor, k.ID, k.ID, k.ID, identity.RetiredDir)
		}
	}
	return nil
}
