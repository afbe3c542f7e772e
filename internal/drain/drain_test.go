package drain

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDrainWaitsForHandlers(t *testing.T) {
	tr := New()
	for range 2 {
		if !tr.Enter() {
			t.Fatal("Enter refused before draining")
		}
	}
	if n := tr.Active(); n != 2 {
		t.Fatalf("Active = %d, want 2", n)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Drain(context.Background()) }()
	<-tr.Stopping()
	if !tr.Draining() {
		t.Fatal("Stopping closed but not Draining")
	}
	if tr.Enter() {
		t.Fatal("Enter admitted a handler while draining")
	}
	tr.Leave()
	select {
	case err := <-done:
		t.Fatalf("Drain returned (%v) with a handler in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	tr.Leave()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := tr.Drain(context.Background()); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
}

func TestDrainGivesUp(t *testing.T) {
	tr := New()
	tr.Enter()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := tr.Drain(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "1 still in progress: context deadline exceeded" {
		t.Fatalf("Drain with a stuck handler: %v", err)
	}
}

func TestDrainIdle(t *testing.T) {
	if err := New().Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}
