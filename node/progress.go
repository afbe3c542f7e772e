package node

import (
	"fmt"
	"io"
)

// The steps of a document that a Meter follows.
const (
	StepHashing  = "hashing"
	StepRelaying = "relaying"
)

// Meter counts the bytes of one step of one document.
type Meter interface {
	Add(n int64)
	Done()
}

// ProgressFunc is told when a document's step starts (a relay tried
// again starts again) and returns the Meter of that step, or nil.
type ProgressFunc func(doc, step string, size int64) Meter

type nopMeter struct{}

func (nopMeter) Add(int64) {}
func (nopMeter) Done()     {}

func (r *Requester) meter(doc, step string, size int64) Meter {
	if r.progress == nil {
		return nopMeter{}
	}
	if m := r.progress(doc, step, size); m != nil {
		return m
	}
	return nopMeter{}
}

// countingReader tells a Meter, and counts, what is read through it.
type countingReader struct {
	r io.Reader
	m Meter
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.m.Add(int64(n))
	return n, err
}

// FormatBytes writes a byte count with a binary unit: 512 B, 1.5 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
