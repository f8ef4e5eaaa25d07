package lab

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestParseDelayKeys(t *testing.T) {
	const base = `
nodes: [{name: a}, {name: b}]
links:
  - name: ab
    ends: [{node: a, ifname: eth0}, {node: b, ifname: eth0}]
`
	topo, err := Parse([]byte(base + "    delay: 10ms\n    jitter: 1ms\n    loss: 0.1%\n    seed: 9\n    queue: 100\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := &topo.Links[0]
	d, j, loss := k.Shape()
	if !k.Delayed() || d != 10*time.Millisecond || j != time.Millisecond || loss != 0.001 {
		t.Errorf("shape %v %v %v (delayed %v)", d, j, loss, k.Delayed())
	}
	topo, err = Parse([]byte(base))
	if err != nil || topo.Links[0].Delayed() {
		t.Errorf("plain link: delayed %v, %v", err == nil && topo.Links[0].Delayed(), err)
	}
	for _, c := range []struct{ extra, want string }{
		{"    delay: 10\n", `link "ab": delay: "10" is not a duration`},
		{"    delay: -1ms\n", `link "ab": delay: -1ms is negative`},
		{"    jitter: 11s\n", `link "ab": jitter: 11s is longer than 10s`},
		{"    loss: 5\n", `link "ab": loss: "5" is not a percentage (write e.g. 0.1%)`},
		{"    loss: 101%\n", `link "ab": loss: "101%" is not a percentage from 0% to 100%`},
		{"    loss: x%\n", `link "ab": loss: "x%" is not a percentage`},
		{"    delay: 1ms\n    queue: 70000\n", `link "ab": queue: 70000 out of range`},
		{"    seed: 3\n", `link "ab": queue and seed apply only to a link with delay, jitter or loss`},
		{"    delai: 1ms\n", `unknown key "delai" in a link`},
	} {
		_, err := Parse([]byte(base + c.extra))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.extra, err, c.want)
		}
	}
}

// TestDueTimeOrder checks that jitter spreads due times over delay ±
// jitter without ever reordering frames.
func TestDueTimeOrder(t *testing.T) {
	s := &delaySpec{Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond, Seed: 1, Queue: 1, Snap: 64}
	p := newPipe(s, -1, -1, -1, 0, time.Now())
	var prev int64
	late := 0
	for i := range 10000 {
		now := int64(i) * int64(100*time.Microsecond)
		d := p.dueTime(now)
		if d < prev {
			t.Fatalf("frame %d due at %d before its predecessor (%d)", i, d, prev)
		}
		if off := d - now; off > int64(13*time.Millisecond) {
			t.Fatalf("frame %d delayed %v, more than delay+jitter", i, time.Duration(off))
		} else if off > int64(12*time.Millisecond) {
			late++
		}
		prev = d
	}
	if late == 0 {
		t.Error("jitter never drew a delay above delay+2ms")
	}
	s.Jitter = 0
	p = newPipe(s, -1, -1, -1, 0, time.Now())
	if d := p.dueTime(5); d != 5+int64(10*time.Millisecond) {
		t.Errorf("no jitter: due %d", d)
	}
}

// TestLossShare checks the loss draw against its configured share with a
// fixed seed (deterministic), and that the same seed repeats the draws.
func TestLossShare(t *testing.T) {
	for _, loss := range []float64{0, 0.001, 0.2, 1} {
		s := &delaySpec{Loss: loss, Seed: 42, Queue: 1, Snap: 64}
		p, q := newPipe(s, -1, -1, -1, 0, time.Now()), newPipe(s, -1, -1, -1, 0, time.Now())
		const n = 100000
		lost := 0
		for range n {
			a, b := p.drop(), q.drop()
			if a != b {
				t.Fatalf("loss %v: two pipes with one seed disagree", loss)
			}
			if a {
				lost++
			}
		}
		got := float64(lost) / n
		if got < loss*0.9-0.0005 || got > loss*1.1+0.0005 {
			t.Errorf("loss %v: dropped %v of the frames", loss, got)
		}
	}
}

// pipePair returns a pipe reading from one datagram socket pair and
// writing to another (stand-ins for the packet sockets), the ends the
// test writes to and reads from, and a stop eventfd.
func pipePair(t *testing.T, s *delaySpec) (p *pipe, in, out, stop int) {
	t.Helper()
	a, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range []int{a[0], a[1], b[0], b[1]} {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	}
	t.Cleanup(func() {
		for _, fd := range []int{a[0], a[1], b[0], b[1], stop} {
			unix.Close(fd)
		}
	})
	return newPipe(s, a[1], b[0], stop, 0, time.Now()), a[0], b[1], stop
}

func runPipe(t *testing.T, p *pipe, stop int) func() {
	done := make(chan error, 1)
	go func() { done <- p.run() }()
	return func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		if _, err := unix.Write(stop, one[:]); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestPipeOrderDelayAndBound sends frames through a pipe: they come out in
// order, no earlier than the delay after they went in, oversize frames and
// those beyond the queue bound are dropped and counted.
func TestPipeOrderDelayAndBound(t *testing.T) {
	const delay = 20 * time.Millisecond
	s := &delaySpec{Delay: delay, Jitter: 5 * time.Millisecond, Seed: 3, Queue: 30, Snap: 100}
	p, in, out, stop := pipePair(t, s)
	// Before the pipe runs: one frame too long for the snap length, then
	// 50 frames: 30 fit the queue, 20 do not.
	if _, err := unix.Write(in, make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 64)
	for i := range 50 {
		binary.BigEndian.PutUint32(frame, uint32(i))
		if _, err := unix.Write(in, frame); err != nil {
			t.Fatal(err)
		}
	}
	sent := time.Now()
	stopPipe := runPipe(t, p, stop)
	buf := make([]byte, 300)
	for i := range 30 {
		n, err := unix.Read(out, buf)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if since := time.Since(sent); since < delay-5*time.Millisecond {
				t.Errorf("first frame out after %v, want at least %v", since, delay-5*time.Millisecond)
			}
		}
		if n != 64 || binary.BigEndian.Uint32(buf) != uint32(i) {
			t.Fatalf("frame %d out: %d bytes, sequence %d", i, n, binary.BigEndian.Uint32(buf))
		}
	}
	// The pipe is now empty: frames sent one by one come out in order.
	for i := range 20 {
		binary.BigEndian.PutUint32(frame, uint32(100+i))
		in0 := time.Now()
		if _, err := unix.Write(in, frame); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Read(out, buf); err != nil {
			t.Fatal(err)
		}
		if got := binary.BigEndian.Uint32(buf); got != uint32(100+i) {
			t.Fatalf("frame %d out as %d", 100+i, got)
		}
		if since := time.Since(in0); since < delay-5*time.Millisecond {
			t.Errorf("frame %d out after %v", i, since)
		}
	}
	stopPipe()
	st := p.stats.snapshot()
	if st != (DelayStats{Forwarded: 50, QueueFull: 20, Oversize: 1}) {
		t.Errorf("counters %+v, want 50 forwarded, 20 queue full, 1 oversize", st)
	}
}

// TestArrival checks the conversion of a kernel receive stamp (wall
// clock) to the pipe's clock: the stamp's age is taken off the monotonic
// reading; no stamp, or one from the future, means now; an age beyond
// maxStampAge (a wall clock step) is cut to it.
func TestArrival(t *testing.T) {
	const mono, wall = int64(5e9), int64(1_700_000_000e9)
	for _, c := range []struct {
		stamp, want int64
	}{
		{0, mono},
		{wall, mono},
		{wall + 1000, mono},
		{wall - 30_000, mono - 30_000},
		{wall - maxStampAge, mono - maxStampAge},
		{wall - 3*maxStampAge, mono - maxStampAge},
	} {
		if got := arrival(c.stamp, mono, wall); got != c.want {
			t.Errorf("arrival(%d) = %d, want %d", c.stamp, got, c.want)
		}
	}
}

// TestParseOOB reads the VLAN tag and the receive stamp from a control
// buffer holding both messages, in either order, and ignores truncated
// ones.
func TestParseOOB(t *testing.T) {
	aux := unix.TpacketAuxdata{Status: unix.TP_STATUS_VLAN_VALID, Vlan_tci: 5}
	ts := unix.NsecToTimespec(1_700_000_000_123_456_789)
	a := cmsg(unix.SOL_PACKET, unix.PACKET_AUXDATA, unsafe.Slice((*byte)(unsafe.Pointer(&aux)), unsafe.Sizeof(aux)))
	s := cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts)))
	for _, oob := range [][]byte{append(a, s...), append(s, a...)} {
		if tag, stamp := parseOOB(oob); tag != 0x81000005 || stamp != 1_700_000_000_123_456_789 {
			t.Errorf("tag %#x stamp %d", tag, stamp)
		}
		if tag, stamp := parseOOB(oob[:len(oob)-8]); stamp == 1_700_000_000_123_456_789 && tag == 0x81000005 {
			t.Errorf("truncated buffer: both messages read (tag %#x stamp %d)", tag, stamp)
		}
	}
	if tag, stamp := parseOOB(nil); tag != 0 || stamp != 0 {
		t.Errorf("empty: tag %#x stamp %d", tag, stamp)
	}
}

// cmsg encodes one control message.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// TestPipeSpinOrderNoLoss pushes bursts through a pipe whose delay (0.1
// ms, the lab's LAN value) is within reach of the spin, with jitter: every
// frame comes out, once, in order, none before the delay after it went in,
// and the counters agree.
func TestPipeSpinOrderNoLoss(t *testing.T) {
	const delay, frames, burst = 100 * time.Microsecond, 3000, 50
	s := &delaySpec{Delay: delay, Jitter: 30 * time.Microsecond, Seed: 5, Queue: 4096, Snap: 100}
	p, in, out, stop := pipePair(t, s)
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	if err := unix.SetsockoptTimeval(out, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	stopPipe := runPipe(t, p, stop)
	sentAt := make([]time.Time, frames)
	errc := make(chan error, 1)
	go func() {
		frame := make([]byte, 64)
		for i := range frames {
			binary.BigEndian.PutUint32(frame, uint32(i))
			sentAt[i] = time.Now()
			if _, err := unix.Write(in, frame); err != nil {
				errc <- err
				return
			}
			if i%burst == burst-1 {
				runtime.Gosched()
			}
		}
		errc <- nil
	}()
	buf := make([]byte, 128)
	early := 0
	for i := range frames {
		var n int
		err := retryIntr(func() (err error) { n, err = unix.Read(out, buf); return err })
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got := binary.BigEndian.Uint32(buf); n != 64 || got != uint32(i) {
			t.Fatalf("frame %d out as %d (%d bytes)", i, got, n)
		}
		if time.Since(sentAt[i]) < delay-s.Jitter {
			early++
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	stopPipe()
	if early > 0 {
		t.Errorf("%d frames left before delay - jitter", early)
	}
	if st := p.stats.snapshot(); st != (DelayStats{Forwarded: frames}) {
		t.Errorf("counters %+v, want %d forwarded", st, frames)
	}
}

// retryIntr calls call again while it fails with EINTR. A blocking read
// on a socket with a receive timeout (SO_RCVTIMEO) fails with EINTR when a
// signal arrives, even for a handler installed with SA_RESTART (signal(7)),
// and Go's runtime signals its threads (asynchronous preemption).
func retryIntr(call func() error) error {
	for {
		if err := call(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// TestSpinAdapts checks that the spin window follows the sleeps'
// overshoot (twice its running mean) and stays within [minSpin, maxSpin].
func TestSpinAdapts(t *testing.T) {
	p := newPipe(&delaySpec{Queue: 1, Snap: 64}, -1, -1, -1, 0, time.Now())
	for range 100 {
		p.adapt(int64(60 * time.Microsecond))
	}
	if p.spin < int64(115*time.Microsecond) || p.spin > int64(120*time.Microsecond) {
		t.Errorf("overshoot 60 µs: spin %v, want about 120 µs", time.Duration(p.spin))
	}
	for range 100 {
		p.adapt(int64(10 * time.Millisecond))
	}
	if p.spin != maxSpin {
		t.Errorf("overshoot 10 ms: spin %v, want the bound %v", time.Duration(p.spin), time.Duration(maxSpin))
	}
	for range 200 {
		p.adapt(0)
	}
	if p.spin != minSpin {
		t.Errorf("no overshoot: spin %v, want the floor %v", time.Duration(p.spin), time.Duration(minSpin))
	}
}
