package authority

import (
	"testing"
	"time"
)

// Pacing decisions, on a synthetic clock.
func TestPace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const maxWait = 20 * time.Millisecond
	// A 10 ms signature: K = 10 ms / signBudget stamps.
	newP := func() *pacer { return newPacer(maxWait, 4096, 10*time.Millisecond) }
	if k, want := newP().worth(), int(10*time.Millisecond/signBudget); k != want {
		t.Fatalf("K = %d, want %d", k, want)
	}

	t.Run("lone stamp signed at once", func(t *testing.T) {
		p := newP()
		p.observe(1, t0)
		now := t0.Add(2 * time.Millisecond) // one fsync later
		if sign, _ := p.decide(state{now: now, stamps: 1, oldest: t0, oldestAny: t0, lastAdd: t0}); !sign {
			t.Fatal("a lone stamp waits")
		}
	})
	t.Run("lone stamp at a low rate, after a busy signature", func(t *testing.T) {
		p := newP()
		p.signed(10*time.Millisecond, false)
		p.observe(1, t0)
		now := t0.Add(time.Millisecond)
		if sign, _ := p.decide(state{now: now, stamps: 1, oldest: t0, oldestAny: t0, lastAdd: t0}); !sign {
			t.Fatal("a stamp waits where no other is expected within MaxWait")
		}
	})
	t.Run("closed loop: quiet after the burst", func(t *testing.T) {
		p := newP()
		p.signed(10*time.Millisecond, true)
		for i := range 128 {
			p.observe(1, t0.Add(time.Duration(i)*time.Microsecond))
		}
		last := t0.Add(127 * time.Microsecond)
		s := state{now: last.Add(100 * time.Microsecond), stamps: 128, oldest: t0, oldestAny: t0, lastAdd: last}
		if sign, wait := p.decide(s); sign || wait > quietGap {
			t.Fatalf("signed %v or waits %v during the burst", sign, wait)
		}
		s.now = last.Add(quietGap)
		if sign, _ := p.decide(s); !sign {
			t.Fatal("no signature after the burst")
		}
		s.appending, s.ready = true, s.now // the previous head has just been signed
		if sign, _ := p.decide(s); sign {
			t.Fatal("signed while stamps of the burst are being appended")
		}
		// The wait for an append is bounded: a steady stream always has
		// one in progress.
		s.now = s.ready.Add(appendWaitMax)
		if sign, _ := p.decide(s); !sign {
			t.Fatal("still waiting for an append appendWaitMax after the last signature")
		}
	})
	t.Run("steady stream waits for K or MaxWait", func(t *testing.T) {
		p := newP()
		p.signed(10*time.Millisecond, false) // stamps arrived during it
		// 8000 stamps/s for a second.
		for i := range 8000 {
			p.observe(1, t0.Add(time.Duration(i)*125*time.Microsecond))
		}
		start := t0.Add(time.Second)
		for i := range 40 {
			p.observe(1, start.Add(time.Duration(i)*125*time.Microsecond))
		}
		now := start.Add(5 * time.Millisecond)
		s := state{now: now, stamps: 40, oldest: start, oldestAny: start, lastAdd: now}
		sign, wait := p.decide(s)
		if sign {
			t.Fatal("a steady stream signs 40 stamps long before MaxWait")
		}
		if wait <= 0 || wait > maxWait-5*time.Millisecond {
			t.Fatalf("waits %v, want at most the %v left of MaxWait", wait, maxWait-5*time.Millisecond)
		}
		if sign, _ := p.decide(state{now: now, stamps: p.worth(), oldest: start, oldestAny: start, lastAdd: now}); !sign {
			t.Fatal("K stamps pending, no signature")
		}
		s.now, s.lastAdd = start.Add(maxWait), start.Add(maxWait)
		if sign, _ := p.decide(s); !sign {
			t.Fatal("oldest stamp waited MaxWait, no signature")
		}
	})
	t.Run("durable leaves alone wait for cover", func(t *testing.T) {
		p := newP()
		s := state{now: t0.Add(maxWait), stamps: 3, oldestAny: t0, lastAdd: t0}
		if sign, wait := p.decide(s); sign || wait != durableCover-maxWait {
			t.Fatalf("durable leaves: sign %v wait %v", sign, wait)
		}
		s.now = t0.Add(durableCover)
		if sign, _ := p.decide(s); !sign {
			t.Fatal("durable leaves never covered")
		}
	})
	t.Run("unknown signature time: K = 1", func(t *testing.T) {
		p := newPacer(maxWait, 4096, 0)
		if sign, _ := p.decide(state{now: t0, stamps: 1, oldest: t0, oldestAny: t0, lastAdd: t0}); !sign {
			t.Fatal("first stamp waits")
		}
	})
}
