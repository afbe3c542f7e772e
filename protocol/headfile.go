package protocol

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// HeadFileFormat marks the file in which a server keeps the latest tree
// head it signed, next to its log (PROTOCOL.md §5.5), so that at start
// it can tell a log that lost published stamps.
const HeadFileFormat = "tsnode-head-v1"

// HeadFile is that file: a JSON object with the format and the head, the
// head written as a receipt's tree_head (§10.1).
type HeadFile struct {
	Format   string           `json:"format"`
	TreeHead *ReceiptTreeHead `json:"tree_head"`
}

var headFileShape = &jsonShape{kinds: jsonKinds(reflect.TypeFor[HeadFile]()), objects: map[string]*jsonShape{"tree_head": treeHeadShape}, required: requiredHeadFileMembers}

func requiredHeadFileMembers(v any, present map[string]bool) error {
	if err := missingMember(present, "", []string{"format", "tree_head"}); err != nil {
		return err
	}
	if v.(*HeadFile).Format != HeadFileFormat {
		return fmt.Errorf("format %q, want %q", v.(*HeadFile).Format, HeadFileFormat)
	}
	return missingMember(present, "tree_head.", treeHeadMembers)
}

// MarshalHeadFile returns the head file's bytes for sth: indented JSON
// and a newline.
func MarshalHeadFile(sth *SignedTreeHead) []byte {
	b, _ := json.MarshalIndent(&HeadFile{Format: HeadFileFormat, TreeHead: newReceiptTreeHead(sth)}, "", "  ") // strings and a number: cannot fail
	return append(b, '\n')
}

// ParseHeadFile decodes a head file as strictly as a receipt. The head's
// signature is not checked here (Trust.CheckTreeHead does).
func ParseHeadFile(b []byte) (*SignedTreeHead, error) {
	hf, err := parseStrict[HeadFile](b, headFileShape)
	if err != nil {
		return nil, err
	}
	return hf.TreeHead.decode("tree_head")
}

// ReadHeadFile reads and decodes the head file at path.
func ReadHeadFile(path string) (*SignedTreeHead, error) {
	return readStrictFile(path, "head file", ParseHeadFile)
}
