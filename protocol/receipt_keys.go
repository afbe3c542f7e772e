package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// jsonShape is the member names of a JSON object, exactly as specified,
// and the shapes of the members that are objects themselves.
type jsonShape struct {
	names   map[string]bool
	objects map[string]*jsonShape
}

var (
	treeHeadShape    = &jsonShape{names: jsonNames(reflect.TypeFor[ReceiptTreeHead]())}
	receiptShape     = &jsonShape{names: jsonNames(reflect.TypeFor[Receipt]()), objects: map[string]*jsonShape{"tree_head": treeHeadShape}}
	consistencyShape = &jsonShape{names: jsonNames(reflect.TypeFor[Consistency]()), objects: map[string]*jsonShape{"old": treeHeadShape, "new": treeHeadShape}}
)

func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// parseStrict decodes a receipt-like file of at most MaxReceiptSize
// bytes with parseStrictJSON; errors are ErrMalformedReceipt.
func parseStrict[T any](b []byte, shape *jsonShape) (*T, error) {
	if len(b) > MaxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrMalformedReceipt, len(b), MaxReceiptSize)
	}
	v := new(T)
	if err := parseStrictJSON(b, shape, v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedReceipt, err)
	}
	return v, nil
}

// readStrictFile reads up to one byte more than MaxReceiptSize of path
// (so that parse sees a file that is too large) and parses it; what
// names the file's kind in errors.
func readStrictFile[T any](path, what string, parse func([]byte) (*T, error)) (*T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxReceiptSize+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read %s %s: %w", what, path, err)
	}
	v, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// parseStrictJSON decodes the JSON object b into v (a pointer to the
// struct shape describes), refusing what encoding/json would accept but
// another reader of the same file might read differently: a member given
// twice (parsers differ on which one wins), a name in another case than
// specified (encoding/json matches names case-insensitively), an unknown
// member, and anything but whitespace after the object.
func parseStrictJSON(b []byte, shape *jsonShape, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("not a JSON object")
	}
	if err := checkMembers(dec, "", shape); err != nil {
		return err
	}
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Only JSON whitespace may follow (dec.More misses a stray '}' or ']').
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}

// checkMembers checks the members of the object whose '{' dec has just
// read, and consumes it up to its '}'.
func checkMembers(dec *json.Decoder, path string, shape *jsonShape) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		switch {
		case !shape.names[key]:
			return fmt.Errorf("unknown member %q", path+key)
		case seen[key]:
			return fmt.Errorf("member %q appears twice", path+key)
		}
		seen[key] = true
		if sub := shape.objects[key]; sub != nil {
			if tok, err = dec.Token(); err != nil {
				return err
			}
			switch tok {
			case nil:
			case json.Delim('{'):
				if err := checkMembers(dec, path+key+".", sub); err != nil {
					return err
				}
			default:
				return fmt.Errorf("member %q is not an object", path+key)
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
