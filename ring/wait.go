package ring

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Pollable is implemented by ports whose arrivals poll(2) can watch, such as
// ring/xsk's: a Waiter then sleeps on all of a worker's ports in one system
// call instead of on one port at a time.
type Pollable interface {
	// PollPrepare readies the port for a sleep (an AF_XDP port refills its
	// fill ring) and reports whether frames are already waiting.
	PollPrepare() (ready bool)
	// PollFD is the descriptor that becomes readable (POLLIN) when frames arrive.
	PollFD() int
}

// Waiter sleeps until any of a set of ports has frames. Build it once per
// worker: Wait allocates nothing.
type Waiter struct {
	ports []Port
	poll  []Pollable // all ports, when every one is Pollable
	fds   []unix.PollFd
	next  int // round-robin position for ports that are not Pollable
}

// NewWaiter returns a Waiter over ports.
func NewWaiter(ports []Port) *Waiter {
	w := &Waiter{ports: ports}
	for _, p := range ports {
		pp, ok := p.(Pollable)
		if !ok {
			w.poll = nil
			break
		}
		w.poll = append(w.poll, pp)
		w.fds = append(w.fds, unix.PollFd{Fd: int32(pp.PollFD()), Events: unix.POLLIN})
	}
	return w
}

// Wait blocks until a port has frames or timeout passes. With Pollable ports
// it polls all of them at once; otherwise it waits on one port at a time,
// round robin, for timeout divided among them, so that no port waits long
// for its turn. It returns a port's error, ErrClosed included.
func (w *Waiter) Wait(timeout time.Duration) error {
	if len(w.ports) == 0 {
		return nil
	}
	if w.poll == nil {
		per := timeout / time.Duration(len(w.ports))
		if per <= 0 {
			per = time.Microsecond
		}
		p := w.ports[w.next]
		w.next = (w.next + 1) % len(w.ports)
		_, err := p.Wait(per)
		return err
	}
	for _, p := range w.poll {
		if p.PollPrepare() {
			return nil
		}
	}
	ms := int((timeout + time.Millisecond - 1) / time.Millisecond)
	for {
		_, err := unix.Poll(w.fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("ring: poll: %w", err)
		}
		return nil
	}
}
