package slowpath

import (
	"time"

	"github.com/rloc-router/rloc/slowpath/request"
)

// Timer is one entry of the core's timer heap. The event loop owns every
// timer; there is no goroutine per timer.
type Timer struct {
	at    time.Time
	fn    func(now time.Time)
	index int // position in the heap, -1 when not scheduled
	h     *timerHeap
}

// timer is the heap's name for a Timer.
type timer = Timer

// Reset moves t to at, scheduling it again if it already fired or was
// stopped (event loop only).
func (t *Timer) Reset(at time.Time) { t.h.reset(t, at) }

// Stop unschedules t; a no-op for a nil timer or one that already fired
// (event loop only).
func (t *Timer) Stop() {
	if t != nil {
		t.h.stop(t)
	}
}

// Schedule arranges for fn to run on the event loop at or after at and
// returns the timer that moves or stops it (event loop only).
func (c *Core) Schedule(at time.Time, fn func(now time.Time)) *Timer {
	return c.timers.schedule(at, fn)
}

// timerHeap is a binary min-heap of timers ordered by deadline.
type timerHeap []*timer

// schedule adds a timer that calls fn at or after at and returns it so that
// it can be stopped or moved.
func (h *timerHeap) schedule(at time.Time, fn func(now time.Time)) *timer {
	t := &timer{at: at, fn: fn, index: -1, h: h}
	h.push(t)
	return t
}

// reset moves t to a new deadline, scheduling it again if it already fired
// or was stopped.
func (h *timerHeap) reset(t *timer, at time.Time) {
	t.at = at
	if t.index < 0 {
		h.push(t)
		return
	}
	if !h.down(t.index) {
		h.up(t.index)
	}
}

// stop unschedules t; it is a no-op for a timer that already fired.
func (h *timerHeap) stop(t *timer) {
	if t == nil || t.index < 0 {
		return
	}
	i := t.index
	n := len(*h) - 1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	t.index = -1
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
}

// next returns the earliest deadline.
func (h timerHeap) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].at, true
}

// run calls, in deadline order, every timer due at now. Timers scheduled by
// the callbacks for now or earlier run in the same call.
func (h *timerHeap) run(now time.Time) {
	for len(*h) > 0 && !(*h)[0].at.After(now) {
		t := (*h)[0]
		h.stop(t)
		t.fn(now)
	}
}

func (h *timerHeap) push(t *timer) {
	t.index = len(*h)
	*h = append(*h, t)
	h.up(t.index)
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].at.Before(h[p].at) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) bool {
	start := i
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].at.Before(h[l].at) {
			m = r
		}
		if !h[m].at.Before(h[i].at) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

// Clock returns the core's time and timers as package request (and the
// registration store) take them (event loop only).
func (c *Core) Clock() request.Clock { return coreClock{c} }

// coreClock adapts the core to request.Clock.
type coreClock struct{ c *Core }

func (k coreClock) Now() time.Time { return k.c.now }

func (k coreClock) Schedule(at time.Time, fn func(now time.Time)) request.Timer {
	return k.c.timers.schedule(at, fn)
}
