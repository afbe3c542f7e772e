package protocol

import (
	"bytes"
	"errors"
	"testing"
)

// A head file round-trips, and is read as strictly as a receipt.
func TestHeadFile(t *testing.T) {
	logs := newForkedLogs(t)
	b := MarshalHeadFile(logs.a3)
	sth, err := ParseHeadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !SameHead(sth, logs.a3) {
		t.Fatal("the head read back differs")
	}
	for name, bad := range map[string][]byte{
		"other format":   bytes.Replace(b, []byte(HeadFileFormat), []byte("tsnode-head-v9"), 1),
		"unknown member": bytes.Replace(b, []byte(`"format"`), []byte(`"extra": "x", "format"`), 1),
		"size mismatch":  bytes.Replace(b, []byte(`"size": 3`), []byte(`"size": 4`), 1),
		"no tree head":   []byte(`{"format": "` + HeadFileFormat + `"}`),
		"empty":          {},
	} {
		if _, err := ParseHeadFile(bad); !errors.Is(err, ErrMalformedReceipt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseHeadFile(f *testing.F) {
	logs := newForkedLogs(f)
	f.Add(MarshalHeadFile(logs.a3))
	f.Fuzz(func(t *testing.T, b []byte) {
		sth, err := ParseHeadFile(b)
		if err != nil {
			return
		}
		if again, err := ParseHeadFile(MarshalHeadFile(sth)); err != nil || !SameHead(again, sth) {
			t.Fatalf("a parsed head does not round-trip: %v", err)
		}
	})
}
