package metrics

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tsnode/tsnode/internal/tcplisten"
)

// Check is one readiness condition: Err returns nil when it holds, else
// why not, in a few words.
type Check struct {
	Name string
	Err  func() error
}

// Endpoint is the HTTP server of --metrics.
type Endpoint struct {
	ln   net.Listener
	srv  *http.Server // nil until Serve
	addr string
}

// Handler serves /metrics from g, /healthz (200 "ok" while the process
// answers) and /readyz (200 "ok" when every check holds, else 503 with one
// line per failing check).
func Handler(g prometheus.Gatherer, checks []Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var failed []string
		for _, c := range checks {
			if err := c.Err(); err != nil {
				failed = append(failed, c.Name+": "+oneLine(err.Error()))
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready\n%s\n", strings.Join(failed, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// Listen takes addr (host:port; port 0 picks one) for the endpoint, so
// that a taken address fails before the node starts: the error names it.
func Listen(addr string) (*Endpoint, error) {
	ln, err := tcplisten.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: cannot listen: %v", addr, err)
	}
	return &Endpoint{ln: ln, addr: ln.Addr().String()}, nil
}

// Serve serves Handler(g, checks) until Close.
func (e *Endpoint) Serve(g prometheus.Gatherer, checks []Check) {
	e.srv = &http.Server{
		Handler:           Handler(g, checks),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go func() { _ = e.srv.Serve(e.ln) }() // ends with Close
}

// Addr is the address listened on, with the port picked.
func (e *Endpoint) Addr() string { return e.addr }

// URL is where the metrics are.
func (e *Endpoint) URL() string { return "http://" + e.addr + "/metrics" }

// Close stops serving, or listening if Serve was not called.
func (e *Endpoint) Close() error {
	if e.srv == nil {
		return e.ln.Close()
	}
	return e.srv.Close()
}
