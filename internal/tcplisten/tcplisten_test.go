package tcplisten

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// A taken address fails with the bare reason, naming no address.
func TestListenTaken(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, err = Listen(addr)
	if !errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), addr) {
		t.Fatalf("listen on a taken %s: %v, want the bare EADDRINUSE", addr, err)
	}
}
