package lab

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A delayed link (a link with delay, jitter or loss) is built as two veth
// pairs meeting in the run's forwarder namespace (DelayNS): node A's
// interface is paired with d<i>a there, node B's with d<i>b, and a
// forwarder copies every frame (any EtherType, ARP, ND and multicast
// included) from one side to the other through AF_PACKET sockets after the
// configured delay. The two nodes still see one Ethernet link. The kernel
// has no netem, so this is how the lab adds latency.

// DelayNS is the name, within a run, of the forwarder namespace of delayed
// links. It cannot clash with a node or bridge name (those cannot start
// with '-').
const DelayNS = "-delay"

// defaultDelayQueue is the default number of frames a direction of a
// delayed link holds.
const defaultDelayQueue = 4096

// delaySpec is what the forwarder needs of one delayed link; it is also the
// JSON the forwarder daemon (labctl delayd) reads on its standard input.
type delaySpec struct {
	Name   string        `json:"name"`
	A      string        `json:"a"` // interface of the A side in the forwarder namespace
	B      string        `json:"b"`
	Delay  time.Duration `json:"delay"`
	Jitter time.Duration `json:"jitter"`
	Loss   float64       `json:"loss"` // probability, 0..1
	Seed   uint64        `json:"seed"`
	Queue  int           `json:"queue"`
	Snap   int           `json:"snap"` // largest frame, bytes
}

// DelayStats counts what one direction of a delayed link did with the
// frames it received.
type DelayStats struct {
	// Forwarded frames were sent on after their delay.
	Forwarded uint64 `json:"forwarded"`
	// Lost frames were dropped on purpose (the link's loss).
	Lost uint64 `json:"lost"`
	// QueueFull frames were dropped because the direction already held
	// Queue frames.
	QueueFull uint64 `json:"queue_full"`
	// Oversize frames were longer than the link's MTU allows.
	Oversize uint64 `json:"oversize"`
	// SendErrors frames could not be sent on.
	SendErrors uint64 `json:"send_errors"`
}

// pipeStats is DelayStats updated by the forwarding goroutine and read by
// others.
type pipeStats struct {
	forwarded, lost, queueFull, oversize, sendErrors atomic.Uint64
}

func (s *pipeStats) snapshot() DelayStats {
	return DelayStats{
		Forwarded: s.forwarded.Load(), Lost: s.lost.Load(), QueueFull: s.queueFull.Load(),
		Oversize: s.oversize.Load(), SendErrors: s.sendErrors.Load(),
	}
}

// pipe is one direction of a delayed link: frames read from rx are sent on
// tx at their due time. Without reordering due times never decrease, so
// the queue is a FIFO ring: equal delays keep arrival order, and a jitter
// draw that would overtake the previous frame waits for it instead.
//
// Two things keep the added delay close to the configured one (issue 15:
// a 0.1 ms link cost ~0.23 ms when the forwarder slept to the due time and
// stamped frames when it woke up to read them):
//   - a frame's delay runs from its arrival, the kernel's receive time
//     stamp (SO_TIMESTAMPNS), not from the forwarder's wake-up to read it;
//   - the forwarder sleeps until spin before the head frame's due time and
//     spins the rest: a sleep overshoots by the timer's wake-up latency
//     (~30-80 µs median on the loaded 2-vCPU VM, longer after longer
//     sleeps), a spin by the clock read. spin follows the overshoots the
//     pipe's own sleeps had (twice their running mean, within
//     [minSpin, maxSpin]).
type pipe struct {
	rx, tx  int
	delay   int64 // ns
	jitter  int64 // ns
	spin    int64 // ns: spin instead of sleeping this close to a due time
	slip    int64 // ns: running mean of the sleeps' overshoot
	stamp   bool  // take a frame's arrival from its kernel receive time stamp
	loss    float64
	rng     *rand.Rand
	bufs    [][]byte // ring of frame buffers, each vlanLen + snap + 1 bytes
	offs    []int    // where each frame starts in its buffer (0 or vlanLen)
	lens    []int
	due     []int64 // monotonic ns since base
	head, n int
	lastDue int64
	base    time.Time
	scratch []byte // receives frames dropped for a full queue
	stats   pipeStats
	stopFD  int

	// recvmsg arguments, reused for every frame.
	iov [1]unix.Iovec
	msg unix.Msghdr
	oob []byte
}

// vlanLen is the size of an 802.1Q tag.
const vlanLen = 4

// spinWindow is how close to a frame's due time a pipe stops sleeping and
// spins at first; then spin adapts to the overshoot of its sleeps, within
// [minSpin, maxSpin]. Longer costs CPU, shorter lets more wake-ups
// overshoot; maxSpin bounds the CPU a frame can cost.
const (
	spinWindow = 50 * time.Microsecond
	minSpin    = int64(20 * time.Microsecond)
	maxSpin    = int64(300 * time.Microsecond)
)

// adapt takes the overshoot of one sleep (ns) into the running mean and
// sets spin to twice that, within [minSpin, maxSpin].
func (p *pipe) adapt(over int64) {
	p.slip += (over - p.slip) / 8
	p.spin = min(max(2*p.slip, minSpin), maxSpin)
}

// sleepOnlyLinks names links whose pipes work as before issue 15 (no
// spin, a frame's delay from its read): set by benchmarks before Up, to
// compare both in one run.
var sleepOnlyLinks map[string]bool

// oobLen holds the control messages of one frame: PACKET_AUXDATA and the
// receive time stamp.
var oobLen = unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))) + unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))

func newPipe(s *delaySpec, rx, tx, stopFD int, dir uint64, base time.Time) *pipe {
	p := &pipe{
		rx: rx, tx: tx, stopFD: stopFD, base: base,
		delay: int64(s.Delay), jitter: int64(s.Jitter), loss: s.Loss,
		spin: int64(spinWindow), slip: int64(spinWindow) / 2, stamp: true,
		rng:     rand.New(rand.NewPCG(s.Seed, dir)),
		bufs:    make([][]byte, s.Queue),
		offs:    make([]int, s.Queue),
		lens:    make([]int, s.Queue),
		due:     make([]int64, s.Queue),
		scratch: make([]byte, vlanLen+s.Snap+1),
		oob:     make([]byte, oobLen),
	}
	if sleepOnlyLinks[s.Name] {
		p.spin, p.stamp = 0, false
	}
	size := vlanLen + s.Snap + 1
	mem := make([]byte, s.Queue*size)
	for i := range p.bufs {
		p.bufs[i] = mem[i*size : (i+1)*size]
	}
	return p
}

// dueTime returns when a frame received at now leaves: now + delay +
// uniform jitter in [-jitter, +jitter], never before the previous frame.
func (p *pipe) dueTime(now int64) int64 {
	d := now + p.delay
	if p.jitter > 0 {
		d += p.rng.Int64N(2*p.jitter+1) - p.jitter
	}
	if d < now {
		d = now
	}
	if d < p.lastDue {
		d = p.lastDue
	}
	p.lastDue = d
	return d
}

// drop reports whether the link's loss takes the next frame.
func (p *pipe) drop() bool { return p.loss > 0 && p.rng.Float64() < p.loss }

func (p *pipe) now() int64 { return int64(time.Since(p.base)) }

// arrival converts a frame's kernel receive time stamp (wall clock, ns;
// 0 when there is none) to the pipe's monotonic clock, given one reading
// of both clocks (mono, wall). A stamp from the future (a wall clock step)
// or none gives mono; one further back than maxStampAge gives mono -
// maxStampAge, so that a clock step never sends a burst out at once.
func arrival(stamp, mono, wall int64) int64 {
	age := wall - stamp
	switch {
	case stamp == 0 || age <= 0:
		return mono
	case age > maxStampAge:
		return mono - maxStampAge
	}
	return mono - age
}

// maxStampAge bounds how long before its read a frame's stamp may say it
// arrived (a frame waits in the socket at most for the forwarder's
// scheduling delay; longer means the wall clock stepped).
const maxStampAge = int64(time.Second)

// spinUntil returns at the pipe's time due, polling the clock.
func (p *pipe) spinUntil(due int64) {
	for p.now() < due {
	}
}

// run forwards until stopFD becomes readable.
func (p *pipe) run() error {
	// The wake-ups are the delay's precision: keep them on one thread
	// whose timer slack (50 µs by default) is as small as it gets and
	// which, real-time (SCHED_FIFO, lowest priority; root only, else as
	// it was), does not queue behind the lab's busy daemons when a frame
	// arrives or falls due. It runs for microseconds per frame (the
	// spin is bounded by p.spin). The thread is not unlocked: it exits
	// with the goroutine instead of going back to the runtime changed.
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	if p.spin > 0 {
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 1}, 0)
	}
	fds := []unix.PollFd{{Fd: int32(p.rx), Events: unix.POLLIN}, {Fd: int32(p.stopFD), Events: unix.POLLIN}}
	var ts unix.Timespec
	for {
		wake := int64(-1) // when a timed sleep should end
		now := p.now()
		for p.n > 0 && p.due[p.head] <= now {
			if _, err := unix.Write(p.tx, p.bufs[p.head][p.offs[p.head]:p.lens[p.head]]); err != nil {
				p.stats.sendErrors.Add(1)
			} else {
				p.stats.forwarded.Add(1)
			}
			p.head = (p.head + 1) % len(p.bufs)
			p.n--
		}
		var tp *unix.Timespec
		if p.n > 0 {
			wait := p.due[p.head] - now
			if wait <= p.spin {
				// A sleep would overshoot: spin to the due time, then
				// take what arrived meanwhile (stamped on arrival).
				p.spinUntil(p.due[p.head])
				p.drain()
				continue
			}
			ts = unix.NsecToTimespec(wait - p.spin)
			tp = &ts
			wake = now + wait - p.spin
		}
		fds[0].Revents, fds[1].Revents = 0, 0
		ready, err := unix.Ppoll(fds, tp, nil)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("lab: delay: poll: %w", err)
		}
		if ready == 0 && wake >= 0 && p.spin > 0 {
			p.adapt(p.now() - wake)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
			return errors.New("lab: delay: socket error")
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			p.drain()
		}
	}
}

// drainBatch bounds the frames drain takes in one go, so that a flood
// does not hold back the frames already due.
const drainBatch = 64

// drain reads the frames waiting on rx into the queue, at most drainBatch.
func (p *pipe) drain() {
	for range drainBatch {
		buf := p.scratch
		full := p.n == len(p.bufs)
		slot := (p.head + p.n) % len(p.bufs)
		if !full {
			buf = p.bufs[slot]
		}
		n, tag, stamp, err := p.recv(buf[vlanLen:])
		if err != nil {
			return // EAGAIN: nothing more
		}
		switch {
		case full:
			p.stats.queueFull.Add(1)
			continue
		case n >= len(buf)-vlanLen || (tag != 0 && n+vlanLen > len(buf)-vlanLen-1):
			p.stats.oversize.Add(1)
			continue
		case p.drop():
			p.stats.lost.Add(1)
			continue
		}
		off := vlanLen
		if tag != 0 && n >= 12 {
			// Put back the 802.1Q tag the receive path took off.
			off = 0
			copy(buf[:12], buf[vlanLen:vlanLen+12])
			binary.BigEndian.PutUint32(buf[12:], tag)
		}
		p.offs[slot], p.lens[slot] = off, vlanLen+n
		t := time.Now()
		mono := int64(t.Sub(p.base))
		if p.stamp {
			mono = arrival(stamp, mono, t.UnixNano())
		}
		p.due[slot] = p.dueTime(mono)
		p.n++
	}
}

// recv receives one frame into b without blocking. It returns the frame's
// full length (MSG_TRUNC), which exceeds len(b) when it did not fit, the
// 802.1Q tag (TPID << 16 | TCI) the kernel stripped from it, or 0 (a
// packet socket gets a tagged frame untagged, with the tag in
// PACKET_AUXDATA), and its receive time stamp (wall clock, ns) or 0. It
// allocates nothing (unix.Recvmsg does).
func (p *pipe) recv(b []byte) (n int, tag uint32, stamp int64, err error) {
	p.iov[0].Base = &b[0]
	p.iov[0].SetLen(len(b))
	p.msg = unix.Msghdr{Iov: &p.iov[0], Iovlen: 1, Control: &p.oob[0]}
	p.msg.SetControllen(len(p.oob))
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(p.rx), uintptr(unsafe.Pointer(&p.msg)), unix.MSG_DONTWAIT|unix.MSG_TRUNC)
	if e != 0 {
		return 0, 0, 0, e
	}
	tag, stamp = parseOOB(p.oob[:p.msg.Controllen])
	return int(r), tag, stamp, nil
}

// auxTag returns the VLAN tag (TPID << 16 | TCI) of a PACKET_AUXDATA
// control message in oob, or 0.
func auxTag(oob []byte) uint32 {
	tag, _ := parseOOB(oob)
	return tag
}

// parseOOB returns the VLAN tag of the PACKET_AUXDATA control message in
// oob (TPID << 16 | TCI, or 0) and the receive time stamp of its
// SCM_TIMESTAMPNS message (wall clock, ns, or 0), without allocating.
func parseOOB(oob []byte) (tag uint32, stamp int64) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && len(data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			tag = vlanTag((*unix.TpacketAuxdata)(unsafe.Pointer(&data[0])))
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})):
			stamp = (*unix.Timespec)(unsafe.Pointer(&data[0])).Nano()
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return tag, stamp
}

// vlanTag returns the VLAN tag (TPID << 16 | TCI) that aux carries, or 0.
func vlanTag(aux *unix.TpacketAuxdata) uint32 {
	if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 {
		return 0
	}
	tpid := uint32(unix.ETH_P_8021Q)
	if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
		tpid = uint32(aux.Vlan_tpid)
	}
	return tpid<<16 | uint32(aux.Vlan_tci)
}

// packetSocket opens an AF_PACKET socket on ifname (in the calling thread's
// namespace) that receives every frame arriving on it, but not those sent
// on it.
func packetSocket(ifname string) (int, error) {
	idx, err := ifIndex(ifname)
	if err != nil {
		return -1, err
	}
	// Protocol 0 receives nothing until bind names the interface, so no
	// frame of another interface slips in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("lab: delay: packet socket: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("lab: delay: %s on %s: %w", what, ifname, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fail("PACKET_AUXDATA", err)
	}
	// A frame's delay runs from its arrival (pipe.stamp).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	// Room for bursts while the forwarder sleeps; FORCE because lab runs
	// as root and rmem_max is small by default.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		return fail("SO_RCVBUFFORCE", err)
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	return fd, nil
}

func ifIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("lab: delay: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("lab: delay: %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("lab: delay: interface %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// forwarder runs the pipes of every delayed link of a run.
type forwarder struct {
	specs  []delaySpec
	fds    []int
	pipes  []*pipe // two per spec: A->B, B->A
	stopFD int
	wg     sync.WaitGroup
	errs   []error
	mu     sync.Mutex
}

// openForwarder opens the sockets of specs in the calling thread's
// namespace. Start the goroutines with start.
func openForwarder(specs []delaySpec) (*forwarder, error) {
	f := &forwarder{specs: specs, stopFD: -1}
	var err error
	if f.stopFD, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("lab: delay: eventfd: %w", err)
	}
	base := time.Now()
	for i := range specs {
		s := &specs[i]
		a, err := packetSocket(s.A)
		if err != nil {
			f.close()
			return nil, err
		}
		f.fds = append(f.fds, a)
		b, err := packetSocket(s.B)
		if err != nil {
			f.close()
			return nil, err
		}
		f.fds = append(f.fds, b)
		f.pipes = append(f.pipes, newPipe(s, a, b, f.stopFD, 0, base), newPipe(s, b, a, f.stopFD, 1, base))
	}
	return f, nil
}

func (f *forwarder) start() {
	for _, p := range f.pipes {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := p.run(); err != nil {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
		}()
	}
}

// stop ends the goroutines, closes the sockets and returns what went wrong
// while forwarding.
func (f *forwarder) stop() error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(f.stopFD, one[:]); err != nil {
		return fmt.Errorf("lab: delay: stop: %w", err)
	}
	f.wg.Wait()
	f.close()
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}

func (f *forwarder) close() {
	for _, fd := range f.fds {
		unix.Close(fd)
	}
	f.fds = nil
	if f.stopFD >= 0 {
		unix.Close(f.stopFD)
		f.stopFD = -1
	}
}

// stats returns the counters of link i, A->B then B->A.
func (f *forwarder) stats(i int) [2]DelayStats {
	return [2]DelayStats{f.pipes[2*i].stats.snapshot(), f.pipes[2*i+1].stats.snapshot()}
}

// DelayReady is the line the forwarder daemon prints on its standard
// output once its sockets are open.
const DelayReady = "ready"

// ServeDelay is the forwarder daemon (labctl delayd): it reads the links
// to forward as JSON from spec, opens their sockets in the current network
// namespace, writes DelayReady and a newline to ready, and forwards until
// stop is closed. It returns each link's counters, as JSON lines written
// to log, on the way out.
func ServeDelay(spec io.Reader, ready io.Writer, log io.Writer, stop <-chan struct{}) error {
	var specs []delaySpec
	if err := json.NewDecoder(spec).Decode(&specs); err != nil {
		return fmt.Errorf("lab: delayd: spec: %w", err)
	}
	for i := range specs {
		if err := specs[i].check(); err != nil {
			return err
		}
	}
	f, err := openForwarder(specs)
	if err != nil {
		return err
	}
	f.start()
	if _, err := fmt.Fprintln(ready, DelayReady); err != nil {
		f.stop()
		return fmt.Errorf("lab: delayd: %w", err)
	}
	<-stop
	err = f.stop()
	for i := range specs {
		st := f.stats(i)
		b, _ := json.Marshal(map[string]any{"link": specs[i].Name, "ab": st[0], "ba": st[1]})
		fmt.Fprintf(log, "%s\n", b)
	}
	return err
}

// check validates a spec read by the daemon.
func (s *delaySpec) check() error {
	switch {
	case s.A == "" || s.B == "":
		return fmt.Errorf("lab: delayd: link %q: interfaces missing", s.Name)
	case s.Delay < 0 || s.Jitter < 0 || s.Loss < 0 || s.Loss > 1:
		return fmt.Errorf("lab: delayd: link %q: delay, jitter or loss out of range", s.Name)
	case s.Queue < 1 || s.Queue > maxDelayQueue:
		return fmt.Errorf("lab: delayd: link %q: queue %d out of range", s.Name, s.Queue)
	case s.Snap < 64 || s.Snap > 65535+18:
		return fmt.Errorf("lab: delayd: link %q: snap %d out of range", s.Name, s.Snap)
	}
	return nil
}

// maxDelayQueue bounds a link's queue key.
const maxDelayQueue = 65536
