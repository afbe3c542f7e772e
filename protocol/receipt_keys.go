package protocol

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// jsonShape is the members of a JSON object, exactly as specified, with
// the JSON type of each; the shapes of the members that are objects
// themselves; and which members must be present (§10.1), which may depend
// on the values read.
type jsonShape struct {
	max      int // the most bytes a file of this shape may have; 0: MaxReceiptSize
	kinds    map[string]jsonKind
	objects  map[string]*jsonShape
	required func(v any, present map[string]bool) error
	// notEmpty are string members that may be left out but, when
	// present, must not be empty: "" would be a second spelling of
	// leaving them out.
	notEmpty map[string]bool
}

// jsonKind is the JSON type a member must have; null is never one.
type jsonKind int

const (
	jsonString jsonKind = iota
	jsonU64
	jsonStrings // an array of strings
	jsonObject
	jsonObjects // an array of objects
)

var (
	treeHeadShape    = &jsonShape{kinds: jsonKinds(reflect.TypeFor[ReceiptTreeHead]()), notEmpty: map[string]bool{"delegation": true, "delegation_signature": true}}
	cosignatureShape = &jsonShape{kinds: jsonKinds(reflect.TypeFor[ReceiptCosignature]())}
	receiptShape     = &jsonShape{kinds: jsonKinds(reflect.TypeFor[Receipt]()), required: requiredReceiptMembers,
		objects: map[string]*jsonShape{"tree_head": treeHeadShape, "cosigned_head": treeHeadShape, "cosignatures": cosignatureShape}}
	consistencyShape = &jsonShape{kinds: jsonKinds(reflect.TypeFor[Consistency]()), objects: map[string]*jsonShape{"old": treeHeadShape, "new": treeHeadShape}, required: requiredConsistencyMembers}
	evidenceShape    = &jsonShape{kinds: jsonKinds(reflect.TypeFor[EvidenceFile]()), objects: map[string]*jsonShape{"first": treeHeadShape, "second": treeHeadShape}, required: requiredEvidenceMembers}
)

// jsonKinds maps the JSON names of t's fields to their JSON types.
func jsonKinds(t reflect.Type) map[string]jsonKind {
	kinds := map[string]jsonKind{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch k := f.Type.Kind(); {
		case k == reflect.String:
			kinds[name] = jsonString
		case k == reflect.Uint64:
			kinds[name] = jsonU64
		case k == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			kinds[name] = jsonStrings
		case k == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
			kinds[name] = jsonObject
		case k == reflect.Slice && f.Type.Elem().Kind() == reflect.Pointer && f.Type.Elem().Elem().Kind() == reflect.Struct:
			kinds[name] = jsonObjects
		}
		// A field of another type is left out, so refused as unknown
		// (TestJSONShapesCoverFields catches it).
	}
	return kinds
}

// Members every receipt must have, then those of each format (§10.1).
var (
	receiptMembers     = []string{"format", "hash_algorithm", "document_hash", "time", "serial", "requester_id", "requester_peer_id", "server_id", "server_peer_id", "nonce"}
	receiptV1Members   = []string{"signed_data", "signature"}
	receiptV2Members   = []string{"leaf", "tree_head"}
	receiptV3Members   = []string{"cosigned_head", "cosignatures"}
	treeHeadMembers    = []string{"size", "root_hash", "time", "signed_data", "signature"}
	cosignatureMembers = []string{"witness_id", "witness_peer_id", "time", "signed_data", "signature"}
)

func missingMember(present map[string]bool, prefix string, names []string) error {
	for _, n := range names {
		if !present[prefix+n] {
			return fmt.Errorf("member %q is missing", prefix+n)
		}
	}
	return nil
}

// requiredReceiptMembers refuses a receipt that lacks a member of its
// format, or has one of the other format. An unknown format is left to
// Receipt.Statement, which names it.
func requiredReceiptMembers(v any, present map[string]bool) error {
	r := v.(*Receipt)
	if !present["format"] {
		return fmt.Errorf("member %q is missing", "format")
	}
	var want, other []string
	switch r.Format {
	case ReceiptFormatV1:
		want, other = receiptV1Members, slices.Concat(receiptV2Members, []string{"inclusion_proof", "consistency_proof"}, receiptV3Members)
	case ReceiptFormatV2:
		want, other = receiptV2Members, slices.Concat(receiptV1Members, []string{"consistency_proof"}, receiptV3Members)
	case ReceiptFormatV3:
		want, other = slices.Concat(receiptV2Members, receiptV3Members), receiptV1Members
	default:
		return nil
	}
	if err := missingMember(present, "", append(slices.Clone(receiptMembers), want...)); err != nil {
		return err
	}
	var extra []string
	for _, n := range other {
		if present[n] {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		return fmt.Errorf("a %s receipt has no %s", r.Format, strings.Join(extra, ", "))
	}
	if r.Format == ReceiptFormatV1 {
		return nil
	}
	if err := missingMember(present, "tree_head.", treeHeadMembers); err != nil {
		return err
	}
	// Writers leave out an empty inclusion proof, and only the leaf
	// of a tree of size 1 has one.
	if !present["inclusion_proof"] && r.TreeHead.Size != 1 {
		return fmt.Errorf("member %q is missing (tree_head.size is %d, not 1)", "inclusion_proof", r.TreeHead.Size)
	}
	if r.Format != ReceiptFormatV3 {
		return nil
	}
	if err := missingMember(present, "cosigned_head.", treeHeadMembers); err != nil {
		return err
	}
	// Likewise an empty consistency proof: only between heads of one size.
	if !present["consistency_proof"] && r.CosignedHead.Size != r.TreeHead.Size {
		return fmt.Errorf("member %q is missing (cosigned_head.size %d is not tree_head.size %d)", "consistency_proof", r.CosignedHead.Size, r.TreeHead.Size)
	}
	if len(r.Cosignatures) == 0 {
		return fmt.Errorf("member %q is empty", "cosignatures")
	}
	for i := range r.Cosignatures {
		if err := missingMember(present, fmt.Sprintf("cosignatures[%d].", i), cosignatureMembers); err != nil {
			return err
		}
	}
	return nil
}

// requiredConsistencyMembers refuses a consistency file that lacks a
// member. An unknown format is left to Consistency.Verify.
func requiredConsistencyMembers(v any, present map[string]bool) error {
	c := v.(*Consistency)
	if !present["format"] {
		return fmt.Errorf("member %q is missing", "format")
	}
	if c.Format != ConsistencyFormat {
		return nil
	}
	for _, prefix := range []string{"", "old.", "new."} {
		names := treeHeadMembers
		if prefix == "" {
			names = []string{"old", "new", "proof"}
		}
		if err := missingMember(present, prefix, names); err != nil {
			return err
		}
	}
	return nil
}

// requiredEvidenceMembers refuses an evidence file that lacks a member.
// An unknown format is left to EvidenceFile.Evidence.
func requiredEvidenceMembers(v any, present map[string]bool) error {
	f := v.(*EvidenceFile)
	if !present["format"] {
		return fmt.Errorf("member %q is missing", "format")
	}
	if f.Format != EvidenceFormat {
		return nil
	}
	for _, prefix := range []string{"", "first.", "second."} {
		names := treeHeadMembers
		if prefix == "" {
			names = []string{"kind", "first", "second", "path"}
		}
		if err := missingMember(present, prefix, names); err != nil {
			return err
		}
	}
	return nil
}

// parseStrict decodes a receipt-like file of at most MaxReceiptSize
// bytes with parseStrictJSON; errors are ErrMalformedReceipt.
func parseStrict[T any](b []byte, shape *jsonShape) (*T, error) {
	if limit := cmp.Or(shape.max, MaxReceiptSize); len(b) > limit {
		return nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrMalformedReceipt, len(b), limit)
	}
	v := new(T)
	present, err := parseStrictJSON(b, shape, v)
	if err == nil && shape.required != nil {
		err = shape.required(v, present)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedReceipt, err)
	}
	return v, nil
}

// readStrictFile reads up to one byte more than MaxReceiptSize of path
// (so that parse sees a file that is too large) and parses it; what
// names the file's kind in errors.
func readStrictFile[T any](path, what string, parse func([]byte) (*T, error)) (*T, error) {
	return readStrictFileMax(path, what, MaxReceiptSize, parse)
}

// readStrictFileMax is readStrictFile of a file of at most limit bytes.
func readStrictFileMax[T any](path, what string, limit int, parse func([]byte) (*T, error)) (*T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
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
// member, a member of another JSON type or null (encoding/json reads null
// as the zero value), and anything but whitespace after the object. It
// returns the members present, nested ones as "parent.member".
func parseStrictJSON(b []byte, shape *jsonShape, v any) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers as their text, checked as exact u64
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	present := map[string]bool{}
	if err := checkMembers(dec, "", shape, present); err != nil {
		return nil, err
	}
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, err
	}
	// Only JSON whitespace may follow (dec.More misses a stray '}' or ']').
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return present, nil
}

// checkMembers checks the members of the object whose '{' dec has just
// read, records them in present, and consumes the object up to its '}'.
func checkMembers(dec *json.Decoder, path string, shape *jsonShape, present map[string]bool) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		kind, known := shape.kinds[key]
		switch {
		case !known:
			return fmt.Errorf("unknown member %q", path+key)
		case seen[key]:
			return fmt.Errorf("member %q appears twice", path+key)
		}
		seen[key] = true
		name := path + key
		present[name] = true
		if tok, err = dec.Token(); err != nil {
			return err
		}
		if tok == nil {
			return fmt.Errorf("member %q is null", name)
		}
		switch kind {
		case jsonObject:
			if tok != json.Delim('{') {
				return fmt.Errorf("member %q is not an object", name)
			}
			if err := checkMembers(dec, name+".", shape.objects[key], present); err != nil {
				return err
			}
		case jsonString:
			s, ok := tok.(string)
			if !ok {
				return fmt.Errorf("member %q is not a string", name)
			}
			if s == "" && shape.notEmpty[key] {
				return fmt.Errorf("member %q is empty", name)
			}
		case jsonU64:
			// Exact: a float64 would round numbers over 2^53.
			n, ok := tok.(json.Number)
			if !ok {
				return fmt.Errorf("member %q is not a number", name)
			}
			if _, err := strconv.ParseUint(string(n), 10, 64); err != nil {
				return fmt.Errorf("member %q is not an integer from 0 to 2^64-1: %s", name, n)
			}
		case jsonObjects:
			if tok != json.Delim('[') {
				return fmt.Errorf("member %q is not an array", name)
			}
			for i := 0; dec.More(); i++ {
				if tok, err = dec.Token(); err != nil {
					return err
				}
				if tok != json.Delim('{') {
					return fmt.Errorf("member %s[%d] is not an object", name, i)
				}
				if err := checkMembers(dec, fmt.Sprintf("%s[%d].", name, i), shape.objects[key], present); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
		case jsonStrings:
			if tok != json.Delim('[') {
				return fmt.Errorf("member %q is not an array", name)
			}
			for i := 0; dec.More(); i++ {
				if tok, err = dec.Token(); err != nil {
					return err
				}
				if _, ok := tok.(string); !ok {
					return fmt.Errorf("member %s[%d] is not a string", name, i)
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
		}
	}
	_, err := dec.Token() // '}'
	return err
}
