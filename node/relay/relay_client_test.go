package relay

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// recorder collects frames written by sendDocument and fails once it has
// more than limit, so a sender that never stops is caught.
type recorder struct {
	buf    bytes.Buffer
	frames int
	limit  int
	fail   error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.fail != nil {
		return 0, r.fail
	}
	r.frames++
	if r.frames > r.limit {
		return 0, errors.New("too many frames")
	}
	return r.buf.Write(p)
}

func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

func TestSendDocument(t *testing.T) {
	key := fill(protocol.SessionKeySize, 3)
	doc := make([]byte, 2*protocol.ChunkSize+10)
	for i := range doc {
		doc[i] = byte(i / 7)
	}
	for _, tc := range []struct {
		name   string
		doc    []byte
		size   int64
		frames int
	}{
		{"empty", nil, 0, 1},
		{"small", doc[:10], 10, 1},
		{"one full chunk", doc[:protocol.ChunkSize], protocol.ChunkSize, 1},
		{"chunk and a byte", doc[:protocol.ChunkSize+1], protocol.ChunkSize + 1, 2},
		{"three chunks", doc, int64(len(doc)), 3},
		{"reader longer than size", doc, 100, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &recorder{limit: 10}
			if err := (&Client{}).sendDocument(w, key, bytes.NewReader(tc.doc), tc.size); err != nil {
				t.Fatal(err)
			}
			if w.frames != tc.frames {
				t.Errorf("%d frames, want %d", w.frames, tc.frames)
			}
			r := bufio.NewReader(&w.buf)
			o := &protocol.ChunkOpener{Aead: testGCM(t, 3)}
			var got []byte
			for !o.Done {
				fr, err := protocol.ReadFrame(r, protocol.MaxRelayFrameSize)
				if err != nil {
					t.Fatal(err)
				}
				pt, _, err := o.Open(fr)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, pt...)
			}
			if !bytes.Equal(got, tc.doc[:tc.size]) {
				t.Fatalf("received %d bytes, want the first %d", len(got), tc.size)
			}
			if _, err := protocol.ReadFrame(r, protocol.MaxRelayFrameSize); err != io.EOF {
				t.Fatalf("after the final chunk: %v", err)
			}
		})
	}

	for _, tc := range []struct {
		name string
		doc  []byte
		size int64
	}{
		{"shrank inside a chunk", doc[:10], 20},
		{"shrank at a chunk boundary", doc[:protocol.ChunkSize], protocol.ChunkSize + 5},
		{"empty but announced", nil, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &recorder{limit: 10}
			err := (&Client{}).sendDocument(w, key, bytes.NewReader(tc.doc), tc.size)
			if err == nil || !strings.Contains(err.Error(), "shrank") {
				t.Fatalf("sendDocument = %v after %d frames, want a shrank error", err, w.frames)
			}
		})
	}

	t.Run("write error", func(t *testing.T) {
		broken := errors.New("stream reset")
		err := (&Client{}).sendDocument(&recorder{limit: 10, fail: broken}, key, bytes.NewReader(doc), int64(len(doc)))
		if !errors.Is(err, broken) {
			t.Fatalf("sendDocument = %v, want %v", err, broken)
		}
	})
}
