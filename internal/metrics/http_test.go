package metrics

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestListenOnATakenAddressNamesIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = Listen(addr)
	if err == nil {
		t.Fatal("listened on a taken address")
	}
	if msg := err.Error(); !strings.Contains(msg, addr) || !strings.Contains(msg, "address already in use") || strings.Contains(msg, "\n") {
		t.Fatalf("error %q: want one line naming %s and why", msg, addr)
	}
	if _, err := Listen("nonsense"); err == nil || !strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("bad address: %v", err)
	}
}

func TestReadyzListsEachFailingCheck(t *testing.T) {
	var logErr error
	checks := []Check{
		{Name: "log", Err: func() error { return logErr }},
		{Name: "signer", Err: func() error { return nil }},
	}
	srv := httptest.NewServer(Handler(New().Gatherer(), checks))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 || body != "ok\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
	logErr = errors.New("closed\nreally")
	if code, body := get("/readyz"); code != 503 || body != "not ready\nlog: closed really\n" {
		t.Fatalf("not ready: %d %q", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `tsnode_refusals_total{reason="unknown-peer"} 0`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	if code, _ := get("/other"); code != 404 {
		t.Fatalf("/other: %d", code)
	}
}
