package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// Member names of a receipt and of its tree head, exactly as specified.
var (
	receiptKeys  = jsonNames(reflect.TypeFor[Receipt]())
	treeHeadKeys = jsonNames(reflect.TypeFor[ReceiptTreeHead]())
)

func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// checkReceiptKeys refuses what encoding/json would accept but another
// reader of the same file might read differently: a member given twice
// (parsers differ on which one wins) or a name in another case than
// specified (encoding/json matches names case-insensitively).
func checkReceiptKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("a receipt is a JSON object")
	}
	return checkObjectKeys(dec, "", receiptKeys)
}

// checkObjectKeys checks the members of the object whose '{' dec has
// just read, and consumes it up to its '}'.
func checkObjectKeys(dec *json.Decoder, path string, known map[string]bool) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch {
		case !known[key]:
			return fmt.Errorf("unknown member %q", path+key)
		case seen[key]:
			return fmt.Errorf("member %q appears twice", path+key)
		}
		seen[key] = true
		if path == "" && key == "tree_head" {
			if tok, err = dec.Token(); err != nil {
				return err
			}
			switch tok {
			case nil:
			case json.Delim('{'):
				if err := checkObjectKeys(dec, "tree_head.", treeHeadKeys); err != nil {
					return err
				}
			default:
				return fmt.Errorf("member \"tree_head\" is not an object")
			}
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}
