package tsa

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tsnode/tsnode/identity"
	"github.com/tsnode/tsnode/internal/tcplisten"
	"github.com/tsnode/tsnode/protocol"
)

// HTTP (RFC 3161 §3.4), as sigstore's timestamp-authority serves it.
const (
	ContentTypeQuery = "application/timestamp-query"
	ContentTypeReply = "application/timestamp-reply"
	// PathTimestamp and PathCertChain are sigstore's paths; POST / and
	// GET /certchain are the same.
	PathTimestamp = "/api/v1/timestamp"
	PathCertChain = "/api/v1/timestamp/certchain"

	httpMaxHeaderBytes = 16 << 10
)

// The HTTP timeouts (variables so that tests can shorten them).
var (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpWriteTimeout      = StampTimeout + 10*time.Second
	httpIdleTimeout       = time.Minute
)

// Handler serves the TSA: POST / and POST /api/v1/timestamp take a
// TimeStampReq (Content-Type application/timestamp-query, at most
// protocol.MaxTSARequestSize bytes) and answer a TimeStampResp;
// GET /certchain and GET /api/v1/timestamp/certchain serve the chain
// PEM; GET /healthz answers "ok". Other methods get 405, other content
// types 415, larger bodies 413.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/{$}", PathTimestamp} {
		mux.HandleFunc(p, s.serveTimestamp)
	}
	for _, p := range []string{"/certchain", PathCertChain} {
		mux.HandleFunc(p, s.serveChain)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !allow(w, r, http.MethodGet) {
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || method == http.MethodGet && r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", method)
	http.Error(w, fmt.Sprintf("method %s not allowed: use %s", r.Method, method), http.StatusMethodNotAllowed)
	return false
}

func (s *Service) serveTimestamp(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != ContentTypeQuery {
		http.Error(w, fmt.Sprintf("content type %q: want %s", r.Header.Get("Content-Type"), ContentTypeQuery), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxTSARequestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request larger than %d bytes", protocol.MaxTSARequestSize), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp := s.Handle(r.Context(), body, protocol.TSAViaHTTP, identity.Entry{})
	w.Header().Set("Content-Type", ContentTypeReply)
	_, _ = w.Write(resp)
}

func (s *Service) serveChain(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	_, _ = w.Write(s.signing.Load().chain)
}

// ListenHTTP takes addr (host:port; port 0 picks one), so that a taken
// address fails before the server starts: the error names it.
func ListenHTTP(addr string) (net.Listener, error) {
	ln, err := tcplisten.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: cannot listen: %v", addr, err)
	}
	return ln, nil
}

type httpServer struct {
	srv  *http.Server
	done sync.WaitGroup
}

// ServeHTTP serves Handler on ln, with timeouts, until Close.
func (s *Service) ServeHTTP(ln net.Listener) {
	h := &httpServer{srv: &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          nil,
	}}
	s.https = append(s.https, h)
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		_ = h.srv.Serve(ln) // ends with close
	}()
}

func (h *httpServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	if err != nil {
		err = h.srv.Close()
	}
	h.done.Wait()
	return err
}
