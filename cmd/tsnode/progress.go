package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/tsnode/tsnode/node"
)

// Progress of hashing and relaying, on stderr. On a terminal: a bar per
// document of at least barMinSize, redrawn in place. Elsewhere (a log, a
// pipe): a line every lineInterval for each step still running, and one
// when such a step ends, so that a long transfer is never silent.
const (
	barMinSize   = 16 << 20
	barInterval  = 200 * time.Millisecond
	lineInterval = 5 * time.Second
	// progressIntervalEnv sets the interval off a terminal (tests).
	progressIntervalEnv = "TSNODE_PROGRESS_INTERVAL"
)

type progress struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}

	mu     sync.Mutex
	active []*meter
	lines  int // bar lines drawn below the output (terminal)
}

type meter struct {
	p          *progress
	doc, step  string
	size       int64
	start      time.Time
	n          atomic.Int64
	shown      bool // a line or bar was written
	lastReport time.Time
}

func newProgress(stderr io.Writer) *progress {
	p := &progress{w: stderr, interval: lineInterval, stop: make(chan struct{}), done: make(chan struct{})}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.interval = true, barInterval
	} else if d, err := time.ParseDuration(os.Getenv(progressIntervalEnv)); err == nil && d > 0 {
		p.interval = d
	}
	go p.loop()
	return p
}

// Start is the requester's node.ProgressFunc.
func (p *progress) Start(doc, step string, size int64) node.Meter {
	if p.tty && size < barMinSize {
		return nil
	}
	m := &meter{p: p, doc: doc, step: step, size: size, start: time.Now()}
	m.lastReport = m.start
	p.mu.Lock()
	p.active = append(p.active, m)
	p.mu.Unlock()
	return m
}

func (m *meter) Add(n int64) { m.n.Add(n) }

// Done ends the step; one that was shown gets its closing line.
func (m *meter) Done() {
	p := m.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, a := range p.active {
		if a == m {
			p.active = append(p.active[:i], p.active[i+1:]...)
			break
		}
	}
	if m.shown {
		p.clearBars()
		el := time.Since(m.start)
		fmt.Fprintf(p.w, "%s: %s %s in %v (%s/s)\n", m.doc, m.step, node.FormatBytes(m.n.Load()), el.Round(time.Millisecond), node.FormatBytes(rate(m.n.Load(), el)))
	}
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			if p.tty {
				p.drawBars()
			} else {
				for _, m := range p.active {
					// A tick's slack: the step that started just after a
					// tick is reported at the next but one.
					if now.Sub(m.lastReport) >= p.interval*9/10 {
						m.lastReport, m.shown = now, true
						fmt.Fprintln(p.w, m.line())
					}
				}
			}
			p.mu.Unlock()
		}
	}
}

// Close stops the display and clears any bar left.
func (p *progress) Close() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	p.clearBars()
	p.mu.Unlock()
}

// clearBars erases the bars drawn on the terminal (mu held).
func (p *progress) clearBars() {
	if p.lines > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.lines)
		p.lines = 0
	}
}

// drawBars redraws one bar per active step (mu held).
func (p *progress) drawBars() {
	p.clearBars()
	for _, m := range p.active {
		m.shown = true
		fmt.Fprintln(p.w, m.bar())
	}
	p.lines = len(p.active)
}

// Writer returns w, made to clear the bars before each write, so that
// results printed on the same terminal are not drawn over.
func (p *progress) Writer(w io.Writer) io.Writer {
	if !p.tty {
		return w
	}
	return writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.clearBars()
		return w.Write(b)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// line is the progress line off a terminal:
// "big.bin: relaying 512.0 MiB of 1.0 GiB (50%), 120.3 MiB/s, ETA 4s".
func (m *meter) line() string {
	n, el := m.n.Load(), time.Since(m.start)
	return fmt.Sprintf("%s: %s %s of %s (%d%%), %s/s, ETA %s", m.doc, m.step, node.FormatBytes(n), node.FormatBytes(m.size), percent(n, m.size), node.FormatBytes(rate(n, el)), eta(n, m.size, el))
}

// bar is the progress bar on a terminal.
func (m *meter) bar() string {
	const width = 30
	n, el := m.n.Load(), time.Since(m.start)
	fill := int(percent(n, m.size)) * width / 100
	return fmt.Sprintf("%-24.24s %-8s [%s%s] %3d%% %10s %10s/s  ETA %s", m.doc, m.step,
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), percent(n, m.size), node.FormatBytes(n), node.FormatBytes(rate(n, el)), eta(n, m.size, el))
}

func percent(n, size int64) int64 {
	if size <= 0 {
		return 100
	}
	return min(n*100/size, 100)
}

func rate(n int64, el time.Duration) int64 {
	if el <= 0 {
		return 0
	}
	return int64(float64(n) / el.Seconds())
}

func eta(n, size int64, el time.Duration) string {
	r := rate(n, el)
	if r <= 0 {
		return "?"
	}
	return time.Duration(float64(size-n) / float64(r) * float64(time.Second)).Round(time.Second).String()
}
