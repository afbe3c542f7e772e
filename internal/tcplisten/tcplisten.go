// Package tcplisten takes a TCP address for an HTTP endpoint (metrics,
// RFC 3161), failing with only the reason, so that callers name the
// address once: not "listen tcp ADDR: bind: address already in use".
package tcplisten

import (
	"errors"
	"net"
	"os"
)

// Listen listens on addr (host:port; port 0 picks one). Its error is the
// bare reason (e.g. "address already in use").
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		var sys *os.SyscallError
		if errors.As(err, &sys) {
			err = sys.Err
		}
		return nil, err
	}
	return ln, nil
}
