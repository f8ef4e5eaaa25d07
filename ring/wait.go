package ring

import (
	"fmt"
	"sync"
	"sync/atomic"
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
	// InFlight returns how many transmitted frames the port has not yet
	// reaped from its completion ring. A completion does not wake poll(2),
	// yet the chunks it returns may be the ones the port needs to receive
	// again (an AF_XDP fill ring): a sleep must not outlast them.
	InFlight() int
}

// Flusher is implemented by ports whose Transmit can leave waking the
// kernel to the caller (ring/xsk in copy mode pays one sendto per wake-up):
// after DeferKicks, Transmit only queues frames, waking the kernel by itself
// only when its ring runs short of room, and Flush wakes it for every frame
// queued so far. A caller that defers must Flush at the end of each batch.
type Flusher interface {
	// DeferKicks switches Transmit to deferred wake-ups for good.
	DeferKicks()
	// Unkicked returns how many queued frames the kernel has not taken
	// yet (Flush sends them; a kick the device refused leaves some).
	Unkicked() int
	// Flush wakes the kernel for the frames queued (when it needs it).
	Flush() error
}

// Waiter sleeps until any of a set of ports has frames or Wake is called.
// Build it once per worker and Close it when the worker is gone: Wait
// allocates nothing.
type Waiter struct {
	ports []Port
	poll  []Pollable // all ports, when every one is Pollable
	fds   []unix.PollFd
	next  int // round-robin position for ports that are not Pollable

	// Wake-ups from other goroutines: an eventfd polled with the ports
	// (the last entry of fds), written only while the worker sleeps.
	sleeping atomic.Bool
	mu       sync.Mutex // orders Wake's write against Close
	efd      int        // -1 without an eventfd (ports not Pollable, or closed)
	buf      [8]byte
	// Wakes counts Wake calls that had to write the eventfd (the worker
	// slept).
	wakes atomic.Uint64
}

// NewWaiter returns a Waiter over ports. Until OpenWake, Wake does nothing
// and Wait returns after its timeout at the latest.
func NewWaiter(ports []Port) *Waiter {
	w := &Waiter{ports: ports, efd: -1}
	for _, p := range ports {
		pp, ok := p.(Pollable)
		if !ok {
			w.poll, w.fds = nil, nil
			break
		}
		w.poll = append(w.poll, pp)
		w.fds = append(w.fds, unix.PollFd{Fd: int32(pp.PollFD()), Events: unix.POLLIN})
	}
	return w
}

// OpenWake opens the eventfd through which Wake ends a sleep, when every
// port is Pollable (otherwise Wake stays a no-op and CanSleep false). Close
// closes it again. Call both from the waiting goroutine.
func (w *Waiter) OpenWake() error {
	if w.poll == nil || w.efd >= 0 {
		return nil
	}
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("ring: eventfd: %w", err)
	}
	w.mu.Lock()
	w.efd = fd
	w.mu.Unlock()
	w.fds = append(w.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	return nil
}

// CanSleep reports whether the caller may wait without a time limit: Wake
// can end a Wait, and no port has transmissions in flight (see
// Pollable.InFlight).
func (w *Waiter) CanSleep() bool {
	if w.efd < 0 {
		return false
	}
	for _, p := range w.poll {
		if p.InFlight() > 0 {
			return false
		}
	}
	return true
}

// Sleeping reports whether the waiter is in (or about to enter) a sleep.
// Safe from any goroutine.
func (w *Waiter) Sleeping() bool { return w.sleeping.Load() }

// Wakes returns how many Wake calls found the waiter asleep and woke it.
// Safe from any goroutine.
func (w *Waiter) Wakes() uint64 { return w.wakes.Load() }

// Wait blocks until a port has frames, Wake is called or timeout passes
// (timeout < 0: no limit, only with CanSleep). With Pollable ports it polls
// all of them at once; otherwise it waits on one port at a time, round
// robin, for timeout divided among them, so that no port waits long for its
// turn. busy, when not nil, is asked after the waiter announced its sleep
// and before it sleeps: work that arrived in between (a Wake that saw no
// sleeper) makes Wait return at once. It returns a port's error, ErrClosed
// included.
func (w *Waiter) Wait(timeout time.Duration, busy func() bool) error {
	if len(w.ports) == 0 {
		return nil
	}
	if w.poll == nil {
		if timeout < 0 {
			timeout = time.Millisecond
		}
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
	ms := -1
	if timeout >= 0 || w.efd < 0 {
		ms = int((max(timeout, 0) + time.Millisecond - 1) / time.Millisecond)
	}
	// Announce the sleep before the last look at the work: a waker
	// publishes its work before it reads sleeping, so either it sees the
	// flag and writes the eventfd, or busy sees its work.
	w.sleeping.Store(true)
	defer w.sleeping.Store(false)
	if busy != nil && busy() {
		return nil
	}
	for {
		_, err := unix.Poll(w.fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("ring: poll: %w", err)
		}
		if w.efd >= 0 && w.fds[len(w.fds)-1].Revents&unix.POLLIN != 0 {
			_, _ = unix.Read(w.efd, w.buf[:]) // reset the counter
		}
		return nil
	}
}

// Wake ends a Wait in progress, or makes the next one return at once when
// the waiter is about to sleep. It costs a system call only when the worker
// sleeps. Safe from any goroutine.
func (w *Waiter) Wake() {
	if !w.sleeping.Load() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.efd < 0 {
		return
	}
	one := [8]byte{1}
	if _, err := unix.Write(w.efd, one[:]); err == nil {
		w.wakes.Add(1)
	}
}

// Close closes the eventfd of OpenWake; Wake does nothing afterwards.
func (w *Waiter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.efd < 0 {
		return nil
	}
	err := unix.Close(w.efd)
	w.efd = -1
	if n := len(w.fds); n > len(w.poll) {
		w.fds = w.fds[:n-1]
	}
	return err
}
