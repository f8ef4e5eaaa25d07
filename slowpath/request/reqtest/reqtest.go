// Package reqtest provides in-memory fakes of the environment interfaces
// of package request (Clock, Timer, Sender) for tests of the control-plane
// primitives and of the roles that use them: a clock that only moves when
// told to and a sender that records what it is given. It does not import
// testing.
package reqtest

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath/request"
	"github.com/rloc-router/rloc/wire"
)

// Clock is a fake request.Clock: time stands still until Advance or Set,
// which run the timers that fell due, in deadline order, on the calling
// goroutine.
type Clock struct {
	now    time.Time
	timers []*Timer
	seq    uint64
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.now }

// Schedule adds a timer calling fn at at.
func (c *Clock) Schedule(at time.Time, fn func(now time.Time)) request.Timer {
	t := &Timer{c: c, fn: fn}
	t.Reset(at)
	return t
}

// Advance moves the clock forward by d, running the timers due.
func (c *Clock) Advance(d time.Duration) { c.Set(c.now.Add(d)) }

// Set moves the clock to at, running, in deadline order, every timer due
// at or before it (each at its own deadline, the clock reading that
// deadline); timers the callbacks schedule within the span run too.
func (c *Clock) Set(at time.Time) {
	for {
		t := c.first()
		if t == nil || t.at.After(at) {
			break
		}
		t.active = false
		if t.at.After(c.now) {
			c.now = t.at
		}
		t.fn(c.now)
	}
	if at.After(c.now) {
		c.now = at
	}
}

// Next returns the earliest pending deadline.
func (c *Clock) Next() (time.Time, bool) {
	if t := c.first(); t != nil {
		return t.at, true
	}
	return time.Time{}, false
}

// Pending returns the number of scheduled timers.
func (c *Clock) Pending() int {
	n := 0
	for _, t := range c.timers {
		if t.active {
			n++
		}
	}
	return n
}

// first returns the active timer due first (ties: scheduled first).
func (c *Clock) first() *Timer {
	c.timers = slices.DeleteFunc(c.timers, func(t *Timer) bool { return !t.active })
	var best *Timer
	for _, t := range c.timers {
		if best == nil || t.at.Before(best.at) || t.at.Equal(best.at) && t.seq < best.seq {
			best = t
		}
	}
	return best
}

// Timer is a fake request.Timer.
type Timer struct {
	c      *Clock
	fn     func(time.Time)
	at     time.Time
	seq    uint64
	active bool
}

// Reset moves the timer to at.
func (t *Timer) Reset(at time.Time) {
	t.c.seq++
	t.at, t.seq = at, t.c.seq
	if !t.active {
		t.active = true
		t.c.timers = append(t.c.timers, t)
	}
}

// Stop cancels the timer.
func (t *Timer) Stop() { t.active = false }

// Sent is one message a Sender was given.
type Sent struct {
	// Dst is the destination.
	Dst netip.AddrPort
	// Msg is a copy of the message.
	Msg []byte
	// Type is the message type passed to Send.
	Type wire.MessageType
	// At is the clock's time when it was sent (zero without a clock).
	At time.Time
}

// ErrRefused is the error a Sender returns for refused destinations.
var ErrRefused = errors.New("reqtest: send refused")

// Sender is a fake request.Sender that records every message.
type Sender struct {
	// Clock, when set, stamps each Sent.
	Clock *Clock
	// Port is the local port LocalPort reports.
	Port uint16
	// NoPort makes LocalPort fail (no socket of the family).
	NoPort bool
	// Refuse makes Send fail for these destinations.
	Refuse map[netip.AddrPort]bool
	// Sent are the messages sent, oldest first.
	Sent []Sent
}

// Send records msg.
func (s *Sender) Send(dst netip.AddrPort, msg []byte, t wire.MessageType) error {
	if s.Refuse[dst] {
		return ErrRefused
	}
	x := Sent{Dst: dst, Msg: slices.Clone(msg), Type: t}
	if s.Clock != nil {
		x.At = s.Clock.Now()
	}
	s.Sent = append(s.Sent, x)
	return nil
}

// LocalPort returns Port, or false with NoPort.
func (s *Sender) LocalPort(netip.AddrPort) (uint16, bool) { return s.Port, !s.NoPort }

// Take returns the messages sent since the last Take and forgets them.
func (s *Sender) Take() []Sent {
	out := s.Sent
	s.Sent = nil
	return out
}
