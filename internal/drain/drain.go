// Package drain lets a stream service stop without dropping work: once
// draining, it takes no new work, interrupts what only waits for more,
// and waits for what is in progress to finish (PROTOCOL.md §7.7).
package drain

import (
	"context"
	"fmt"
	"sync"
)

// Tracker counts a service's handlers in progress and says when the
// service starts to drain. The zero value is not usable; use New.
type Tracker struct {
	mu       sync.Mutex
	draining bool
	active   int
	stopping chan struct{} // closed when draining starts
	idle     chan struct{} // closed when draining and active == 0
}

// New returns a Tracker that is not draining.
func New() *Tracker {
	return &Tracker{stopping: make(chan struct{}), idle: make(chan struct{})}
}

// Enter counts a handler in, unless the service is draining: then it
// returns false and the handler should refuse its work. A handler that
// entered calls Leave when done.
func (t *Tracker) Enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.draining {
		return false
	}
	t.active++
	return true
}

// Leave counts a handler out.
func (t *Tracker) Leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.draining && t.active == 0 {
		close(t.idle)
	}
}

// Draining reports whether draining has started.
func (t *Tracker) Draining() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.draining
}

// Active is how many handlers are in progress.
func (t *Tracker) Active() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active
}

// Stopping is closed when draining starts.
func (t *Tracker) Stopping() <-chan struct{} { return t.stopping }

// Drain starts draining (once; later calls only wait) and waits until
// every handler that entered has left, or ctx ends: then it returns an
// error saying how many were still in progress.
func (t *Tracker) Drain(ctx context.Context) error {
	t.mu.Lock()
	if !t.draining {
		t.draining = true
		close(t.stopping)
		if t.active == 0 {
			close(t.idle)
		}
	}
	t.mu.Unlock()
	select {
	case <-t.idle:
		return nil
	case <-ctx.Done():
		t.mu.Lock()
		n := t.active
		t.mu.Unlock()
		return fmt.Errorf("%d still in progress: %w", n, ctx.Err())
	}
}
