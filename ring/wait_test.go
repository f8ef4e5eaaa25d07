package ring

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pipePort is a Pollable Port whose descriptor is the read end of a pipe:
// writing to the pipe makes it "receive".
type pipePort struct {
	Port     // nil: only the Pollable methods are used
	r, w     int
	inFlight int
}

func newPipePort(t *testing.T) *pipePort {
	t.Helper()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return &pipePort{r: fds[0], w: fds[1]}
}

func (p *pipePort) PollPrepare() bool { return false }
func (p *pipePort) PollFD() int       { return p.r }
func (p *pipePort) InFlight() int     { return p.inFlight }

// waitAsleep waits (bounded) until the Waiter announced its sleep.
func waitAsleep(t *testing.T, w *Waiter) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !w.sleeping.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never went to sleep")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWaiterWakeEndsUnboundedSleep(t *testing.T) {
	w := NewWaiter([]Port{newPipePort(t), newPipePort(t)})
	if w.CanSleep() {
		t.Fatal("CanSleep before OpenWake")
	}
	if err := w.OpenWake(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.CanSleep() {
		t.Fatal("CanSleep false after OpenWake")
	}
	// A port with transmissions in flight must be looked at again.
	w.poll[1].(*pipePort).inFlight = 3
	if w.CanSleep() {
		t.Fatal("CanSleep with frames in flight")
	}
	w.poll[1].(*pipePort).inFlight = 0
	w.Wake() // nobody sleeps: no write
	if w.Wakes() != 0 {
		t.Fatalf("Wake without a sleeper wrote the eventfd (%d)", w.Wakes())
	}
	for round := range 3 { // the eventfd is reset after each wake-up
		done := make(chan error, 1)
		go func() { done <- w.Wait(-1, nil) }()
		waitAsleep(t, w)
		w.Wake()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Wake did not end the sleep", round)
		}
		if w.Wakes() != uint64(round+1) {
			t.Fatalf("round %d: Wakes = %d", round, w.Wakes())
		}
	}
}

func TestWaiterPortWakesAndBusySkips(t *testing.T) {
	a, b := newPipePort(t), newPipePort(t)
	w := NewWaiter([]Port{a, b})
	if err := w.OpenWake(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Work announced before the sleep: Wait returns at once, even unbounded.
	if err := w.Wait(-1, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	// The second port becomes readable: one poll(2) covers both.
	done := make(chan error, 1)
	go func() { done <- w.Wait(-1, func() bool { return false }) }()
	waitAsleep(t, w)
	if _, err := unix.Write(b.w, []byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a readable port did not end the sleep")
	}
	if w.sleeping.Load() {
		t.Fatal("still marked asleep after Wait returned")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.CanSleep() {
		t.Fatal("CanSleep after Close")
	}
	w.Wake() // harmless after Close
}
