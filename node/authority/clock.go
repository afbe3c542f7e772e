package authority

import (
	"fmt"
	"time"

	"github.com/tsnode/tsnode/protocol"
)

// clockState is the appender's view of the clock against the last issued
// time: whether it is behind (stamping paused), since when, and when an
// error line was last written about it.
type clockState struct {
	behind   bool
	seen     string // the clock's reading at the last check, for logs
	since    time.Time
	reminded time.Time
}

// check returns ErrClockBehind, with both times, unless now is less than
// tolerance before last: a batch is dated max(now, last+1ns), which is
// then at most tolerance ahead of the clock. It only compares.
func (c *clockState) check(now, last time.Time, tolerance time.Duration) error {
	c.seen = protocol.FormatTime(now.UTC())
	if last.IsZero() || last.Sub(now) < tolerance {
		return nil
	}
	return fmt.Errorf("%w: the clock reads %s, %v before the last issued time %s (tolerance %v); "+
		"if the clock stepped back, fix it (NTP): stamping resumes by itself once it passes %s; "+
		"if the last stamps were dated by a clock that ran ahead, this log cannot date honest stamps before then",
		ErrClockBehind, c.seen, last.Sub(now).Round(time.Millisecond), protocol.FormatTime(last), tolerance,
		protocol.FormatTime(last.Add(-tolerance)))
}

// checkClock is the appender's gate before an append: nil to stamp at
// now, or the refusal for every stamp of the batch. It logs the change
// into and out of the paused state, and a reminder while it lasts.
func (a *Authority) checkClock(now time.Time) error {
	_, _, last, err := a.log.Root()
	if err != nil {
		return nil // the append reports a closed or broken log
	}
	err = a.clock.check(now, last, a.tolerance)
	switch c := &a.clock; {
	case err != nil && !c.behind:
		c.behind, c.since, c.reminded = true, time.Now(), time.Now()
		log.Errorw("stamping paused: "+err.Error(), "clock", c.seen, "last_issued", protocol.FormatTime(last))
	case err != nil && time.Since(c.reminded) >= clockBehindReminder:
		c.reminded = time.Now()
		log.Errorw("stamping still paused: the clock is behind the last issued time",
			"clock", c.seen, "last_issued", protocol.FormatTime(last), "paused_for", time.Since(c.since).Round(time.Second))
	case err == nil && c.behind:
		c.behind = false
		log.Warnw("stamping resumed: the clock caught up with the last issued time",
			"clock", c.seen, "last_issued", protocol.FormatTime(last), "paused_for", time.Since(c.since).Round(time.Second))
	}
	return err
}
