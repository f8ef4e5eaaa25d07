package fastpath

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/mem"
)

// pollPort is an in-memory port that poll(2) can watch, as an AF_XDP
// socket: its descriptor is a pipe that never becomes readable, so only
// Wake (or PollPrepare finding frames) ends the worker's sleep.
type pollPort struct {
	*mem.Port
	r, w int
}

// PollPrepare empties the pipe (the test writes it after each inject, as a
// socket turns readable) and reports whether frames wait.
func (p *pollPort) PollPrepare() bool {
	var b [64]byte
	for {
		if n, _ := unix.Read(p.r, b[:]); n <= 0 {
			break
		}
	}
	ok, _ := p.Port.Wait(0)
	return ok
}

func (p *pollPort) PollFD() int { return p.r }

// InFlight: a mem port's transmissions complete at once.
func (p *pollPort) InFlight() int { return 0 }

// pollable wraps every port of cfg in a pollPort.
func pollable(t *testing.T) func(*Config) {
	return func(c *Config) {
		for i := range c.Ports {
			var fds [2]int
			if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
			c.Ports[i].Port = &pollPort{Port: c.Ports[i].Port.(*mem.Port), r: fds[0], w: fds[1]}
		}
	}
}

// runWorker runs r's worker loop until the test ends, checking that it
// returns nil promptly once cancelled (Stop wakes a sleeping worker).
func runWorker(t *testing.T, r *rig) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel: Stop did not wake the sleeping worker")
		}
	})
}

// waitAsleep waits (bounded) until the worker sleeps in poll(2).
func waitAsleep(t *testing.T, w *Worker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !w.waiter.Sleeping() {
		if time.Now().After(deadline) {
			t.Fatal("the worker never went to sleep")
		}
		time.Sleep(time.Millisecond)
	}
}

// drainSome waits (bounded) until the worker transmitted something on r's
// core port, and returns how many frames it drained.
func drainSome(r *rig) int {
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got == 0 && time.Now().Before(deadline); {
		got += r.core.Drain(nil)
		time.Sleep(time.Millisecond)
	}
	return got
}

// TestSleepLimit: an idle worker on pollable ports sleeps without a time
// limit, unless a held packet has its hold time running; on ports poll(2)
// cannot watch it sleeps IdleWait at most.
func TestSleepLimit(t *testing.T) {
	r := newRig(t, pollable(t))
	if err := r.w.waiter.OpenWake(); err != nil {
		t.Fatal(err)
	}
	defer r.w.waiter.Close()
	if d := r.w.sleepLimit(); d >= 0 {
		t.Fatalf("idle worker sleeps at most %v, want no limit", d)
	}
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("10.9.0.1"), payload: 8}))
	if r.w.hold.HeldPackets() != 1 {
		t.Fatalf("held %d packets", r.w.hold.HeldPackets())
	}
	if d := r.w.sleepLimit(); d != r.w.cfg.IdleWait {
		t.Fatalf("worker holding a packet sleeps at most %v, want IdleWait %v", d, r.w.cfg.IdleWait)
	}
	m := newRig(t, nil) // ring/mem ports: no eventfd, bounded
	if d := m.w.sleepLimit(); d != m.w.cfg.IdleWait {
		t.Fatalf("worker on mem ports sleeps at most %v", d)
	}
}

// TestSleepWokenByRelease: a worker asleep while it holds a packet (IdleWait
// of an hour, so no timer ends the sleep) is woken by the Release the slow
// path pushes, and sends the packet at once.
func TestSleepWokenByRelease(t *testing.T) {
	r := newRig(t, func(c *Config) {
		pollable(t)(c)
		c.IdleSpins, c.IdleWait = 1, time.Hour
	})
	dst := netip.MustParseAddr("10.9.0.1")
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: dst, payload: 8}))
	runWorker(t, r)
	waitAsleep(t, r.w)
	p := netip.MustParsePrefix("10.9.0.0/16")
	r.install([]StaticMapping{{IID: iidSite, Prefix: p, RLOCs: []StaticRLOC{{Addr: rlocOther4}}}})
	if !r.w.Releases().Push(Release{IID: iidSite, Prefix: p}) {
		t.Fatal("release queue full")
	}
	if got := drainSome(r); got != 1 {
		t.Fatalf("released %d packets, want 1", got)
	}
	if r.w.waiter.Wakes() == 0 {
		t.Error("the release did not go through Wake")
	}
}

// TestSleepWokenByFrames: a sleeping worker wakes for frames (PollPrepare
// or the port's descriptor), here with frames already queued when it
// prepares its next sleep.
func TestSleepWokenByFrames(t *testing.T) {
	r := newRig(t, func(c *Config) {
		pollable(t)(c)
		c.IdleSpins = 1
	})
	runWorker(t, r)
	waitAsleep(t, r.w)
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 10})
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got < 10 && time.Now().Before(deadline); {
		if r.site.Inject(frame) {
			// The pipe stands for the socket becoming readable.
			_, _ = unix.Write(r.w.ports[0].p.(*pollPort).w, []byte{1})
		}
		got += r.core.Drain(nil)
		time.Sleep(time.Millisecond)
	}
	if got < 10 {
		t.Fatalf("forwarded %d frames", got)
	}
}

// TestBusyPollYields: a busy-polling worker never sleeps, but once it had
// IdleSpins empty steps it yields its CPU on every empty step (so another
// thread on that CPU is not held up for the rest of its time slice), and
// keeps polling: a frame injected without waking anything is forwarded. A
// sleeping worker does not yield.
func TestBusyPollYields(t *testing.T) {
	for _, busy := range []bool{true, false} {
		r := newRig(t, func(c *Config) {
			pollable(t)(c)
			c.IdleSpins, c.BusyPoll = 4, busy
		})
		var yields atomic.Int64
		enough := make(chan struct{})
		r.w.yield = func() {
			if yields.Add(1) == 100 {
				close(enough)
			}
		}
		runWorker(t, r)
		if !busy {
			waitAsleep(t, r.w)
			if n := yields.Load(); n != 0 {
				t.Fatalf("a sleeping worker yielded %d times", n)
			}
			continue
		}
		select {
		case <-enough:
		case <-time.After(10 * time.Second):
			t.Fatalf("busy-polling worker yielded %d times in 10 s", yields.Load())
		}
		frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 10})
		if !r.site.Inject(frame) { // no write to the pipe: only polling finds it
			t.Fatal("inject refused")
		}
		if got := drainSome(r); got != 1 {
			t.Fatalf("busy-polling worker forwarded %d frames after yielding, want 1", got)
		}
		if r.w.waiter.Sleeping() {
			t.Fatal("busy-polling worker sleeps")
		}
	}
}

// flushPort is an in-memory port with deferred transmit wake-ups
// (ring.Flusher) that counts them.
type flushPort struct {
	*mem.Port
	deferred bool
	unkicked int
	flushes  int
}

func (p *flushPort) Transmit(frames []ring.Frame) (int, error) {
	n, err := p.Port.Transmit(frames)
	p.unkicked += n
	return n, err
}

func (p *flushPort) DeferKicks()   { p.deferred = true }
func (p *flushPort) Unkicked() int { return p.unkicked }
func (p *flushPort) Flush() error {
	p.flushes++
	p.unkicked = 0
	return nil
}

// TestKickCoalescing: a worker defers the transmit wake-ups of a Flusher
// port and kicks once per step by default, or, with KickDelay, once
// KickBatch frames wait, and always before it sleeps.
func TestKickCoalescing(t *testing.T) {
	var core *flushPort
	wrap := func(delay time.Duration) func(*Config) {
		return func(c *Config) {
			core = &flushPort{Port: c.Ports[1].Port.(*mem.Port)}
			c.Ports[1].Port = core
			c.KickDelay = delay
		}
	}
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 10})
	frames := func(n int) [][]byte {
		fs := make([][]byte, n)
		for i := range fs {
			fs[i] = frame
		}
		return fs
	}

	r := newRig(t, wrap(0))
	if !core.deferred {
		t.Fatal("the worker did not defer the port's kicks")
	}
	r.fromSite(frames(40)...) // one step, one batch: one kick
	if core.flushes != 1 || core.unkicked != 0 {
		t.Fatalf("KickDelay 0: %d flushes, %d unkicked after one step", core.flushes, core.unkicked)
	}
	r.w.Step() // nothing queued: no kick
	if core.flushes != 1 {
		t.Fatalf("an empty step kicked (%d flushes)", core.flushes)
	}

	r = newRig(t, wrap(time.Hour))
	r.fromSite(frames(20)...)
	r.fromSite(frames(5)...)
	if core.flushes != 0 || core.unkicked != 25 {
		t.Fatalf("KickDelay 1h: %d flushes, %d unkicked below KickBatch", core.flushes, core.unkicked)
	}
	r.fromSite(frames(7)...) // 32 queued: KickBatch reached
	if core.flushes != 1 || core.unkicked != 0 {
		t.Fatalf("at KickBatch: %d flushes, %d unkicked", core.flushes, core.unkicked)
	}
	r.fromSite(frames(3)...)
	r.w.sleepOnce(t)
	if core.flushes != 2 || core.unkicked != 0 {
		t.Fatalf("before sleeping: %d flushes, %d unkicked", core.flushes, core.unkicked)
	}
	if got := len(drain(r.core)); got != 35 {
		t.Fatalf("core link got %d frames", got)
	}
}

// sleepOnce runs one idle sleep of the worker (ring/mem ports: bounded by
// IdleWait).
func (w *Worker) sleepOnce(t *testing.T) {
	t.Helper()
	w.sleep()
	if w.err != nil {
		t.Fatal(w.err)
	}
}

// TestSlowPathNotify: a step that queues a MissEvent leaves one token on
// Config.SlowPathNotify; steps that queue nothing new leave none.
func TestSlowPathNotify(t *testing.T) {
	notify := make(chan struct{}, 1)
	r := newRig(t, func(c *Config) { c.SlowPathNotify = notify })
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 8})) // mapped: no miss
	if len(notify) != 0 {
		t.Fatal("a step without misses notified the slow path")
	}
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("10.9.0.1"), payload: 8}))
	select {
	case <-notify:
	default:
		t.Fatal("a step that queued a MissEvent did not notify the slow path")
	}
	r.w.Step()
	if len(notify) != 0 {
		t.Fatal("an empty step notified again")
	}
}
