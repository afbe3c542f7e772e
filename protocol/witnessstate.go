package protocol

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/tsnode/tsnode/identity"
)

// WitnessStateFormat marks the file in which a witness keeps, per
// authority, the last head it cosigned (PROTOCOL.md §13.3): it is written
// durably before any cosignature is published, so that across crashes a
// witness never cosigns a head that does not extend it.
const WitnessStateFormat = "tsnode-witness-state-v1"

// WitnessStateFile is that file.
type WitnessStateFile struct {
	Format    string             `json:"format"`
	WitnessID string             `json:"witness_id"`
	Cosigned  []*ReceiptTreeHead `json:"cosigned"` // one per authority, sorted by server id
}

// MaxWitnessStateSize bounds the state file: about 1.1 KB a head, so some
// 3,700 authorities (a receipt's 64 KiB would hold 58).
const MaxWitnessStateSize = 4 << 20

var witnessStateShape = &jsonShape{max: MaxWitnessStateSize, kinds: jsonKinds(reflect.TypeFor[WitnessStateFile]()),
	objects: map[string]*jsonShape{"cosigned": treeHeadShape}, required: requiredWitnessStateMembers}

func requiredWitnessStateMembers(v any, present map[string]bool) error {
	f := v.(*WitnessStateFile)
	if err := missingMember(present, "", []string{"format", "witness_id", "cosigned"}); err != nil {
		return err
	}
	if f.Format != WitnessStateFormat {
		return fmt.Errorf("format %q, want %q", f.Format, WitnessStateFormat)
	}
	for i := range f.Cosigned {
		if err := missingMember(present, fmt.Sprintf("cosigned[%d].", i), treeHeadMembers); err != nil {
			return err
		}
	}
	return nil
}

// MarshalWitnessState returns the state file's bytes: indented JSON and
// a newline. heads must be sorted by server id, one per server.
func MarshalWitnessState(witness identity.ID, heads []*SignedTreeHead) []byte {
	f := &WitnessStateFile{Format: WitnessStateFormat, WitnessID: string(witness), Cosigned: []*ReceiptTreeHead{}}
	for _, h := range heads {
		f.Cosigned = append(f.Cosigned, newReceiptTreeHead(h))
	}
	b, _ := json.MarshalIndent(f, "", "  ") // strings and numbers: cannot fail
	return append(b, '\n')
}

// ParseWitnessState decodes a state file as strictly as a receipt: the
// witness id, and the heads, at most one per server. Signatures are not
// checked here.
func ParseWitnessState(b []byte) (identity.ID, []*SignedTreeHead, error) {
	f, err := parseStrict[WitnessStateFile](b, witnessStateShape)
	if err != nil {
		return "", nil, err
	}
	id, err := identity.ParseID(f.WitnessID)
	if err != nil {
		return "", nil, fmt.Errorf("%w: witness_id: %v", ErrMalformedReceipt, err)
	}
	var heads []*SignedTreeHead
	seen := map[identity.ID]bool{}
	for i, th := range f.Cosigned {
		h, err := th.decode(fmt.Sprintf("cosigned[%d]", i))
		if err != nil {
			return "", nil, err
		}
		if seen[h.Head.ServerID] {
			return "", nil, fmt.Errorf("%w: two heads of %s", ErrMalformedReceipt, h.Head.ServerID)
		}
		seen[h.Head.ServerID] = true
		heads = append(heads, h)
	}
	return id, heads, nil
}

// ReadWitnessState reads and decodes the state file at path.
func ReadWitnessState(path string) (identity.ID, []*SignedTreeHead, error) {
	type state struct {
		id    identity.ID
		heads []*SignedTreeHead
	}
	s, err := readStrictFileMax(path, "witness state", MaxWitnessStateSize, func(b []byte) (*state, error) {
		id, heads, err := ParseWitnessState(b)
		return &state{id, heads}, err
	})
	if err != nil {
		return "", nil, err
	}
	return s.id, s.heads, nil
}
