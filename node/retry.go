package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Backoff between tries: exponential from 200 ms, doubling up to 5 s,
// each wait drawn ±50 % around its mean so that requesters cut off
// together (a server restart) do not come back together.
const (
	retryInitial = 200 * time.Millisecond
	retryMax     = 5 * time.Second
)

type timeoutKey struct{}

// retryHookKey holds a func(what string, err error) told of each retry
// (tests).
type retryHookKey struct{}

// withTimeout bounds ctx by d (0: not at all) and remembers d, so that a
// timeout is reported as "timed out after d".
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	ctx = context.WithValue(ctx, timeoutKey{}, d)
	return context.WithTimeout(ctx, d)
}

// retry runs op until it succeeds, returns a backoff.Permanent error, has
// run maxTries times (0: no limit), or ctx ends. It returns how many tries
// ran. what names the step in the final error ("stamping doc.txt").
func retry[T any](ctx context.Context, what string, maxTries int, op func() (T, error)) (T, int, error) {
	start := time.Now()
	tries := 0
	var last error
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.Multiplier, b.RandomizationFactor = retryInitial, retryMax, 2, 0.5
	v, err := backoff.Retry(ctx, func() (T, error) {
		tries++
		v, err := op()
		// A try cut short by ctx failed because of the timeout, not
		// for a reason worth reporting.
		if err != nil && ctx.Err() == nil {
			last = err
			var p *backoff.PermanentError
			if errors.As(err, &p) {
				last = p.Unwrap()
			}
		}
		return v, err
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithMaxTries(uint(max(maxTries, 0))),
		backoff.WithNotify(func(err error, next time.Duration) {
			log.Infow("retrying", "step", what, "tries", tries, "in", next.Round(time.Millisecond), "err", err)
			if hook, ok := ctx.Value(retryHookKey{}).(func(string, error)); ok {
				hook(what, err)
			}
		}))
	if err == nil {
		return v, tries, nil
	}
	var zero T
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			d, ok := ctx.Value(timeoutKey{}).(time.Duration)
			if !ok {
				d = time.Since(start).Round(time.Millisecond)
			}
			return zero, tries, &TimeoutError{After: d, What: what, Tries: tries, Last: last}
		}
		return zero, tries, fmt.Errorf("cancelled while %s (%s)", what, triesText(tries))
	}
	if tries == 1 {
		return zero, tries, last
	}
	return zero, tries, fmt.Errorf("%s failed after %s: %w", what, triesText(tries), last)
}

// TimeoutError is a step that ran out of time, with the last failure
// seen, if any.
type TimeoutError struct {
	After time.Duration
	What  string
	Tries int
	Last  error
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("timed out after %v %s (%s)", e.After, e.What, triesText(e.Tries))
	if e.Last != nil {
		msg += "; last failure: " + e.Last.Error()
	}
	return msg
}

func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

func triesText(n int) string {
	if n == 1 {
		return "1 try"
	}
	return fmt.Sprintf("%d tries", n)
}
