package logsync

import (
	"bufio"
	"errors"
	"testing"

	"github.com/tsnode/tsnode/internal/testnet"
	"github.com/tsnode/tsnode/protocol"
)

// /tsnode/log/1.1.0: the leaf at a serial and its inclusion proof in the
// latest head; a serial beyond it is refused; the §8.2 request is still
// answered on 1.1.0, and 1.0.0 resets a leaf request.
func TestFetchLeaf(t *testing.T) {
	srv := startLogServer(t, testnet.Transports[0].Listen)
	h := testnet.ClientOf(t, "1000", srv.host)
	c := &Client{Host: h, Server: testnet.Entry(t, "server"), Trust: testnet.Trust(t, srv.dir)}
	if _, _, _, err := c.FetchLeaf(testnet.Ctx(t), 0); !errors.Is(err, protocol.ErrRefused) {
		t.Fatalf("empty log: %v", err)
	}
	var stamps []*protocol.LogStamp
	for i := range 5 {
		stamps = append(stamps, srv.submit(t, i))
	}
	for _, st := range stamps {
		head, leaf, proof, err := c.FetchLeaf(testnet.Ctx(t), st.Statement.Serial)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.VerifyInclusion(leaf, st.Statement.Serial, head.Head.Size, head.Head.Root, proof); err != nil {
			t.Fatalf("serial %d: %v", st.Statement.Serial, err)
		}
		if s, err := protocol.ParseLeaf(leaf); err != nil || s.Serial != st.Statement.Serial {
			t.Fatalf("serial %d: leaf %+v, %v", st.Statement.Serial, s, err)
		}
	}
	if _, _, _, err := c.FetchLeaf(testnet.Ctx(t), 99); !errors.Is(err, protocol.ErrRefused) {
		t.Fatalf("serial beyond the head: %v", err)
	}
	for _, id := range []string{IDv11, ID} {
		st, err := h.NewStream(testnet.Ctx(t), srv.host.ID(), "/tsnode/log/1.0.0")
		if id == IDv11 {
			st, err = h.NewStream(testnet.Ctx(t), srv.host.ID(), IDv11)
		}
		if err != nil {
			t.Fatal(err)
		}
		req := protocol.EncodeLogRequest(0, 0)
		if id == ID {
			req = protocol.EncodeLogLeafRequest(0)
		}
		if err := protocol.WriteFrame(st, req); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseWrite()
		frame, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxLogLeafResponseSize)
		st.Close()
		if id == IDv11 {
			if r, err2 := protocol.ParseLogResponse(frame); err != nil || err2 != nil || r.Status != protocol.StatusOK {
				t.Fatalf("a §8.2 request on 1.1.0: %v %v", err, err2)
			}
		} else if err == nil {
			t.Fatal("1.0.0 answered a leaf request")
		}
	}
}
