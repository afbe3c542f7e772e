package tsa

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/tsnode/tsnode/internal/testkeys"
	"github.com/tsnode/tsnode/internal/testnet"
)

// shortTimeouts makes the HTTP timeouts of servers started by the test
// short, so that a slow client is dropped within it.
func shortTimeouts(t *testing.T) {
	h, r := httpReadHeaderTimeout, httpReadTimeout
	httpReadHeaderTimeout, httpReadTimeout = 300*time.Millisecond, 600*time.Millisecond
	t.Cleanup(func() { httpReadHeaderTimeout, httpReadTimeout = h, r })
}

// dropped reads from c until the server closes it; it fails the test if
// that takes longer than within.
func dropped(t *testing.T, c net.Conn, within time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server kept the connection for %v (read %q)", within, b)
	}
	return string(b)
}

// A client sending its headers a byte at a time, slower than the header
// timeout, is dropped, and other requests are served meanwhile.
func TestHTTPSlowClient(t *testing.T) {
	shortTimeouts(t)
	f := newFixture(t, KeyECDSA)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + ContentTypeQuery + "\r\n") {
			if _, err := c.Write([]byte{b}); err != nil {
				return // dropped
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	code, resp := f.post(t, "/", ContentTypeQuery, request(t, []byte("meanwhile")))
	if _, err := timestamp.ParseResponse(resp); code != http.StatusOK || err != nil {
		t.Fatalf("a request beside the slow client: HTTP %d, %v", code, err)
	}
	dropped(t, c, 5*time.Second)
	<-done
	if f.log.Size() != 1 {
		t.Fatalf("log holds %d leaves, want 1", f.log.Size())
	}
}

// A body shorter than its Content-Length: refused when the client closes
// its side, dropped at the read timeout when it waits; nothing logged.
func TestHTTPTruncatedBody(t *testing.T) {
	shortTimeouts(t)
	f := newFixture(t, KeyECDSA)
	q := request(t, []byte("doc"))
	for _, closeWrite := range []bool{true, false} {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ContentTypeQuery, len(q)+100)
		_, _ = c.Write(q)
		if closeWrite {
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("truncated body, write side closed: %v %v", resp, err)
			}
		} else {
			out := dropped(t, c, 5*time.Second)
			if strings.Contains(out, "200 OK") {
				t.Fatalf("a truncated body was answered: %q", out)
			}
		}
		c.Close()
	}
	if f.log.Size() != 0 {
		t.Fatalf("truncated bodies logged %d leaves", f.log.Size())
	}
}

// Truncated frames on /tsnode/rfc3161/1.0.0: a length larger than the
// bytes sent, and a length alone, reset the stream; nothing is logged,
// and a whole request is served after them.
func TestLibp2pTruncatedFrame(t *testing.T) {
	f := newFixture(t, KeyECDSA)
	tr := testnet.Transports[0]
	server := testnet.NewHost(t, "server", tr.Listen)
	svc, err := New(server, f.auth, f.k, Options{Dir: testkeys.Directory(t, "server", "1000")})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	client := testnet.ClientOf(t, "1000", server)
	q := request(t, []byte("doc"))
	for _, frame := range [][]byte{append([]byte{byte(len(q) + 10)}, q...), {0x80}, {0x05, 0x30}} {
		st, err := client.NewStream(testnet.Ctx(t), server.ID(), ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = st.Write(frame)
		_ = st.CloseWrite()
		_ = st.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(st)
		if err == nil || len(b) > 0 {
			t.Fatalf("frame %x: answered %x, %v", frame, b, err)
		}
		st.Close()
	}
	if f.log.Size() != 0 {
		t.Fatalf("truncated frames logged %d leaves", f.log.Size())
	}
	if _, err := Request(testnet.Ctx(t), client, server.ID(), q); err != nil {
		t.Fatal(err)
	}
}
