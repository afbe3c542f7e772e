package protocol

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

func TestTopic(t *testing.T) {
	if got := Topic("server"); got != "/tsnode/heads/1.0.0/server" {
		t.Fatalf("Topic = %q", got)
	}
	if MaxGossipMessageSize != 8192 {
		t.Fatalf("MaxGossipMessageSize = %d", MaxGossipMessageSize)
	}
}

func TestGossipRoundTrip(t *testing.T) {
	tree := newMemTree(t, "leaf", 0, 9)
	other := newMemTree(t, "other", 0, 9)
	head := tree.head(t, 9, logTime)
	cosig := cosignAs(t, "2000", head.Head, logTime.Add(time.Second))

	m, err := ParseGossipMessage(EncodeGossipHead(head))
	if err != nil {
		t.Fatal(err)
	}
	if m.Cosig != nil || m.Evidence != nil || !SameHead(m.Head, head) || m.Head.Head.Size != 9 {
		t.Fatalf("head message parsed as %+v", m)
	}

	m, err = ParseGossipMessage(EncodeGossipCosigned(head, cosig))
	if err != nil {
		t.Fatal(err)
	}
	if m.Evidence != nil || !SameHead(m.Head, head) || m.Cosig == nil || *m.Cosig.Cosig != *cosig.Cosig ||
		!bytes.Equal(m.Cosig.Encoded, cosig.Encoded) || !bytes.Equal(m.Cosig.Signature, cosig.Signature) {
		t.Fatalf("cosigned message parsed as %+v", m)
	}
	p := policyOf(t, 1, time.Minute, "2000")
	if _, err := p.CheckCosignature(m.Head.Head, m.Cosig.Encoded, m.Cosig.Signature); err != nil {
		t.Fatalf("the gossiped cosignature does not check: %v", err)
	}

	for _, path := range [][]tlog.Hash{nil, {hashOf(1)}, other.path(t, 5, 9), other.path(t, 4, 9)} {
		e := &Evidence{First: tree.head(t, 5, logTime), Second: other.head(t, 9, logTime), Path: path}
		enc := EncodeGossipEvidence(e)
		m, err := ParseGossipMessage(enc)
		if err != nil {
			t.Fatal(err)
		}
		if m.Head != nil || m.Cosig != nil || m.Evidence == nil {
			t.Fatalf("evidence message parsed as %+v", m)
		}
		g := m.Evidence
		if !SameHead(g.First, e.First) || !SameHead(g.Second, e.Second) || len(g.Path) != len(path) {
			t.Fatalf("evidence of a path of %d parsed as one of %d", len(path), len(g.Path))
		}
		for i := range path {
			if g.Path[i] != path[i] {
				t.Fatalf("path[%d] differs", i)
			}
		}
		if !bytes.Equal(EncodeGossipEvidence(g), enc) {
			t.Fatal("does not re-encode to the same bytes")
		}
	}
}

func TestGossipRefused(t *testing.T) {
	tree := newMemTree(t, "leaf", 0, 9)
	head := tree.head(t, 9, logTime)
	small := tree.head(t, 5, logTime)
	cosig := cosignAs(t, "2000", head.Head, logTime)
	cosigSmall := cosignAs(t, "2000", small.Head, logTime)
	const (
		htag = "tsnode/gossip-head/v1"
		ctag = "tsnode/gossip-cosigned/v1"
		etag = "tsnode/gossip-evidence/v1"
	)
	path := fill(2*tlog.HashSize, 7)

	// At the maximum, a message is parsed; one byte over, it is not.
	pad := MaxGossipMessageSize - len(EncodeRecord(htag, head.Encoded, nil))
	atMax := EncodeRecord(htag, head.Encoded, fill(pad, 1))
	if len(atMax) != MaxGossipMessageSize {
		t.Fatalf("%d bytes", len(atMax))
	}
	if _, err := ParseGossipMessage(atMax); err != nil {
		t.Fatalf("a message of %d bytes: %v", len(atMax), err)
	}
	over := EncodeRecord(htag, head.Encoded, fill(pad+1, 1))

	for _, c := range []struct {
		name     string
		in       []byte
		sentinel error
		msg      string
	}{
		{"over the maximum", over, ErrTooLarge, "gossip message of 8193 bytes, maximum 8192"},
		{"far over the maximum", fill(1<<20, 0), ErrTooLarge, "maximum 8192"},
		{"empty", nil, ErrMalformed, `not a witness topic message (record type "")`},
		{"unknown tag", EncodeRecord("tsnode/gossip-heads/v1", head.Encoded, head.Signature), ErrMalformed, `record type "tsnode/gossip-heads/v1"`},
		{"tree head alone", head.Encoded, ErrMalformed, `record type "tsnode-tree-head-v1"`},
		{"tag in capitals", EncodeRecord("TSNODE/gossip-head/v1", head.Encoded, head.Signature), ErrMalformed, "not a witness topic message"},
		{"truncated tag length", []byte{0, 0, 0}, ErrMalformed, "not a witness topic message"},
		{"tag length past the end", []byte{0, 0, 0, 30, 't'}, ErrMalformed, "not a witness topic message"},
		{"head without signature", EncodeRecord(htag, head.Encoded, nil), ErrMalformed, "tree head of size 9 without a signature"},
		{"head, 1 field", EncodeRecord(htag, head.Encoded), ErrMalformed, "1 fields, want 2"},
		{"head, 3 fields", EncodeRecord(htag, head.Encoded, head.Signature, nil), ErrMalformed, "3 fields, want 2"},
		{"head not a tree head", EncodeRecord(htag, cosig.Encoded, head.Signature), ErrMalformed, `record type "tsnode-cosignature-v1", want "tsnode-tree-head-v1"`},
		{"head trailing byte", append(EncodeGossipHead(head), 0), ErrMalformed, "truncated field length"},
		{"cosigned, another head", EncodeGossipCosigned(head, cosigSmall), ErrMalformed, "the cosignature is of another head than the one it came with"},
		{"cosigned, head without signature", EncodeRecord(ctag, head.Encoded, nil, cosig.Encoded, cosig.Signature), ErrMalformed, "without a signature"},
		{"cosigned, not a cosignature", EncodeRecord(ctag, head.Encoded, head.Signature, head.Encoded, cosig.Signature), ErrMalformed, `record type "tsnode-tree-head-v1", want "tsnode-cosignature-v1"`},
		{"cosigned, 3 fields", EncodeRecord(ctag, head.Encoded, head.Signature, cosig.Encoded), ErrMalformed, "3 fields, want 4"},
		{"cosigned with the head tag", EncodeRecord(htag, head.Encoded, head.Signature, cosig.Encoded, cosig.Signature), ErrMalformed, "fields, want 2"},
		{"evidence, path of 33 bytes", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, head.Signature, fill(33, 0)), ErrMalformed, "evidence path of 33 bytes, not a multiple of 32"},
		{"evidence, path of 31 bytes", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, head.Signature, fill(31, 0)), ErrMalformed, "evidence path of 31 bytes"},
		{"evidence, first without signature", EncodeRecord(etag, small.Encoded, nil, head.Encoded, head.Signature, path), ErrMalformed, "tree head of size 5 without a signature"},
		{"evidence, second without signature", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, nil, path), ErrMalformed, "tree head of size 9 without a signature"},
		{"evidence, second not a head", EncodeRecord(etag, small.Encoded, small.Signature, cosig.Encoded, head.Signature, path), ErrMalformed, "record type"},
		{"evidence, 4 fields", EncodeRecord(etag, small.Encoded, small.Signature, head.Encoded, head.Signature), ErrMalformed, "4 fields, want 5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseGossipMessage(c.in)
			wantErr(t, err, c.sentinel, c.msg)
			if m != nil && (m.Head != nil || m.Cosig != nil || m.Evidence != nil) {
				t.Errorf("returned %+v with the error", m)
			}
		})
	}
}
