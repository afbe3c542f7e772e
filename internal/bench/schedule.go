package bench

import (
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"
)

// schedule gives the open loop's send times: each call to next returns
// the next request's offset from the start of the run, never less than
// the one before.
type schedule interface {
	next() time.Duration
}

// newSchedule returns the schedule called name at rate requests per
// second; seed makes a Poisson schedule repeatable.
func newSchedule(name string, rate float64, seed uint64) (schedule, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("rate %g: want more than 0", rate)
	}
	switch name {
	case ScheduleFixed:
		return &fixedSchedule{rate: rate}, nil
	case SchedulePoisson:
		return &poissonSchedule{rate: rate, rng: mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}, nil
	}
	return nil, fmt.Errorf("schedule %q: want %s or %s", name, SchedulePoisson, ScheduleFixed)
}

// fixedSchedule sends request i at i/rate seconds: computed from i, not
// summed, so the spacing does not drift.
type fixedSchedule struct {
	rate float64
	i    uint64
}

func (s *fixedSchedule) next() time.Duration {
	d := time.Duration(float64(s.i) * float64(time.Second) / s.rate)
	s.i++
	return d
}

// poissonSchedule sends the first request at 0 and the others after
// exponential gaps of mean 1/rate: the arrivals of a Poisson process.
type poissonSchedule struct {
	rate float64
	rng  *mrand.Rand
	at   float64 // seconds
}

func (s *poissonSchedule) next() time.Duration {
	d := time.Duration(s.at * float64(time.Second))
	s.at += s.rng.ExpFloat64() / s.rate
	return d
}
