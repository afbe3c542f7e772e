package main

import (
	"fmt"
	"io"

	"github.com/tsnode/tsnode/internal/metrics"
	"github.com/tsnode/tsnode/node"
)

// metricsEndpoint is --metrics: listened on before the node starts, so
// that a taken address stops the start, and served once it runs.
type metricsEndpoint struct {
	e *metrics.Endpoint // nil without --metrics
}

func listenMetrics(addr string) (*metricsEndpoint, error) {
	if addr == "" {
		return &metricsEndpoint{}, nil
	}
	e, err := metrics.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	return &metricsEndpoint{e: e}, nil
}

// serve serves reg and svc's readiness, and prints where, as the listen
// addresses are printed, so that scripts find a port picked with :0.
func (m *metricsEndpoint) serve(reg *metrics.Registry, svc *node.Service, role string, stdout io.Writer) {
	if m.e == nil {
		return
	}
	m.e.Serve(reg.Gatherer(), svc.Ready())
	fmt.Fprintf(stdout, "%s metrics on %s\n", role, m.e.URL())
}

func (m *metricsEndpoint) close() {
	if m.e != nil {
		m.e.Close()
	}
}
