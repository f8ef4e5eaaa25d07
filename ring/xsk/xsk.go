package xsk

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/ring"
)

// kernelHeadroom is XDP_PACKET_HEADROOM: the kernel puts received data this
// many bytes (plus the UMEM headroom) into the chunk, and that space is ours
// once the descriptor is on the rx ring.
const kernelHeadroom = 256

// Options configures a Group (its UMEM) and the sockets opened on it. Zero
// fields take the defaults below.
type Options struct {
	// NumFrames is the number of UMEM chunks shared by the Group's sockets
	// (default 4096).
	NumFrames int
	// FrameSize is the chunk size, a power of two from 2048 to the page size
	// (default 2048).
	FrameSize int
	// FillRingSize, CompletionRingSize, RxRingSize and TxRingSize are the
	// per-socket ring sizes, powers of two (default 1024 each).
	FillRingSize       int
	CompletionRingSize int
	RxRingSize         int
	TxRingSize         int
	// Headroom is extra UMEM headroom the kernel leaves in front of received
	// data on top of its own 256 bytes (default 0).
	Headroom int
	// ZeroCopy binds with XDP_ZEROCOPY (the driver must support it);
	// otherwise XDP_COPY.
	ZeroCopy bool
	// NoNeedWakeup disables XDP_USE_NEED_WAKEUP: the socket then kicks the
	// kernel on every transmit instead of only when the ring asks.
	NoNeedWakeup bool
	// TxBudget is how many frames one sendto may transmit in copy mode
	// (XDP_MAX_TX_SKB_BUDGET, Linux 6.17 and later; the kernel's own
	// default is 32). Default: the tx ring size. Kernels without the option
	// keep their default; a negative value keeps it everywhere.
	TxBudget int
	// BusyPoll sets SO_PREFER_BUSY_POLL, SO_BUSY_POLL (BusyPollUsec, default
	// 20) and SO_BUSY_POLL_BUDGET (default 64) on each socket; Receive then
	// drives the driver with recvfrom when its ring is empty.
	BusyPoll       bool
	BusyPollUsec   int
	BusyPollBudget int
	// AdaptiveFill sizes each socket's fill ring by its traffic instead of
	// keeping it as full as the pool allows (the default): see FillMin. It
	// leaves more chunks for busy sockets and transmit when a Group has
	// sockets that receive little, but a burst right after a quiet spell can
	// overrun a socket still at its floor (the AF_XDP end-to-end test lost
	// packets with it), so it is off by default.
	AdaptiveFill bool
	// FillMin, with AdaptiveFill, is the smallest number of chunks a socket
	// keeps on its fill ring (default FillRingSize/4). A socket's fill target starts there,
	// doubles (up to FillRingSize, and at most half of the chunks the Group
	// may lend to fill rings) whenever the kernel took more than half of it
	// between two refills, and halves again (never below FillMin) after a
	// window of refills (fillWindow) in which it took less than a quarter of
	// it in all. A socket that receives steadily so keeps a full fill ring
	// (its buffer while the worker is not scheduled), and one that receives
	// nothing ties up FillMin chunks, not a whole fill ring. Whatever the targets,
	// refills never take the Group's free chunks below its reserve
	// (NumFrames/16, at least 128) that Alloc draws from, and when a Group
	// has many sockets the floor shrinks so that the sockets' floors
	// together take at most half of what may be lent.
	FillMin int
}

func (o *Options) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.NumFrames, 4096)
	def(&o.FrameSize, 2048)
	def(&o.FillRingSize, 1024)
	def(&o.CompletionRingSize, 1024)
	def(&o.RxRingSize, 1024)
	def(&o.TxRingSize, 1024)
	def(&o.BusyPollUsec, 20)
	def(&o.BusyPollBudget, 64)
	def(&o.FillMin, o.FillRingSize/4)
	def(&o.TxBudget, o.TxRingSize)
	pow2 := func(v int) bool { return v > 0 && v&(v-1) == 0 }
	if !pow2(o.FrameSize) || o.FrameSize < 2048 || o.FrameSize > unix.Getpagesize() {
		return fmt.Errorf("xsk: frame size %d: want a power of two in [2048, page size]", o.FrameSize)
	}
	for _, v := range []int{o.FillRingSize, o.CompletionRingSize, o.RxRingSize, o.TxRingSize} {
		if !pow2(v) {
			return fmt.Errorf("xsk: ring size %d is not a power of two", v)
		}
	}
	if o.NumFrames < 64 || o.Headroom < 0 || o.Headroom+kernelHeadroom+256 > o.FrameSize {
		return errors.New("xsk: too few frames or headroom too large")
	}
	if o.TxBudget > o.TxRingSize {
		return fmt.Errorf("xsk: TxBudget %d exceeds the tx ring size %d", o.TxBudget, o.TxRingSize)
	}
	if o.FillMin < 1 || o.FillMin > o.FillRingSize {
		return fmt.Errorf("xsk: FillMin %d: want 1 to the fill ring size %d", o.FillMin, o.FillRingSize)
	}
	return nil
}

// Group is one UMEM and the sockets sharing it (XDP_SHARED_UMEM): the ports
// one worker forwards between, so a frame received on one transmits on any
// other without a copy. A Group and its Ports belong to one goroutine.
type Group struct {
	opts   Options
	umem   []byte
	pool   *ring.Pool
	owner  int // fd of the socket that registered the UMEM, -1 before
	ports  []*Port
	closed bool
}

// NewGroup maps a UMEM of opts.NumFrames chunks.
func NewGroup(opts Options) (*Group, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(-1, 0, opts.NumFrames*opts.FrameSize,
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xsk: map UMEM: %w", err)
	}
	pool, err := ring.NewPool(mem, opts.FrameSize, kernelHeadroom+opts.Headroom)
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return &Group{opts: opts, umem: mem, pool: pool, owner: -1}, nil
}

// Pool returns the Group's frame pool.
func (g *Group) Pool() *ring.Pool { return g.pool }

// Close closes every Port of the Group and unmaps the UMEM.
func (g *Group) Close() error {
	if g.closed {
		return ring.ErrClosed
	}
	g.closed = true
	var errs []error
	for _, p := range append([]*Port(nil), g.ports...) {
		if err := p.Close(); err != nil && !errors.Is(err, ring.ErrClosed) {
			errs = append(errs, err)
		}
	}
	g.ports = nil
	if err := unix.Munmap(g.umem); err != nil {
		errs = append(errs, fmt.Errorf("xsk: unmap UMEM: %w", err))
	}
	return errors.Join(errs...)
}

// uring is a fill or completion ring (entries are UMEM addresses).
type uring struct {
	prod, cons, flags *uint32
	mask              uint32
	descs             []uint64
	mem               []byte
}

// dring is an rx or tx ring (entries are descriptors).
type dring struct {
	prod, cons, flags *uint32
	mask              uint32
	descs             []unix.XDPDesc
	mem               []byte
}

// Port is one AF_XDP socket bound to one interface queue. It implements
// ring.Port.
type Port struct {
	_          [cacheLine]byte // see ring.Pool: sockets of different workers are allocated side by side
	g          *Group
	fd         int
	ifindex    int
	queue      int
	fill, comp uring
	rx, tx     dring
	frameShift uint32
	frameMask  uint64
	reserve    int // pool chunks kept back from the fill ring for Alloc

	// Fill policy (see Options.FillMin).
	fillMin    int // floor of fillTarget
	fillMax    int // ceiling of fillTarget
	fillTarget int // chunks to keep on the fill ring
	fillLevel  int // fill ring occupancy right after the last refill
	fillTaken  int // chunks the kernel took in this window
	fillCalls  int // refills in this window
	needWakeup bool
	busyPoll   bool
	deferKick  bool // DeferKicks: Transmit leaves the kick to Flush
	inFlight   int  // frames put on the tx ring and not yet reaped by Complete
	closed     atomic.Bool
	pfd        [1]unix.PollFd
	pub        published

	// Counters (plain integers; read them from the Port's goroutine).

	// RxPackets counts frames handed out by Receive.
	RxPackets uint64
	// TxPackets counts frames put on the tx ring.
	TxPackets uint64
	// TxCopies counts frames of another Pool copied into this Port's chunks.
	TxCopies uint64
	// TxKicks counts sendto calls; TxKickBusy those that returned
	// EBUSY/ENOBUFS (the rest of the ring waits for the next call).
	// TxPackets/TxKicks is the frames sent per system call.
	TxKicks    uint64
	TxKickBusy uint64
	// TxWakeups counts kicks: times the socket woke the kernel for its
	// tx ring (each one or more sendto calls).
	TxWakeups uint64
	// RxWakeups counts recvfrom calls made for need-wakeup or busy polling.
	RxWakeups uint64
	// BadDescs counts rx or completion descriptors outside the UMEM (dropped).
	BadDescs uint64
	// FillGrows and FillShrinks count changes of the fill target.
	FillGrows, FillShrinks uint64
	// FillShort counts refills that left the fill ring below its target
	// because the Group's free chunks were down to the reserve: frames
	// waiting for their transmission to complete (or held by the worker)
	// tie up the UMEM. If the kernel then also counts fill-ring-empty
	// drops, the UMEM is too small for the ring sizes and the traffic;
	// without FillShort, those drops mean the worker was not scheduled for
	// a fill ring's worth of frames.
	FillShort uint64
	_         [cacheLine]byte
}

// cacheLine is the padding unit between data of different workers: two
// 64-byte lines, since x86 prefetches lines in pairs (as fastpath's).
const cacheLine = 128

// txBatch is the kernel's own copy-mode transmit budget per sendto
// (TX_BATCH_SIZE), also the smallest it accepts for XDP_MAX_TX_SKB_BUDGET.
const txBatch = 32

// fillWindow is the number of refills after which an unused part of the fill
// target is given back (see Options.FillMin). A busy worker refills every
// step, tens of microseconds apart; an idle one about once per millisecond.
const fillWindow = 4096

var (
	_ ring.Port     = (*Port)(nil)
	_ ring.Flusher  = (*Port)(nil)
	_ ring.Pollable = (*Port)(nil)
)

// Open creates a socket on queue queue of the interface named ifname (in the
// calling thread's network namespace) and binds it, registering the Group's
// UMEM on the first socket and sharing it on the others. Register the
// socket with the steering Program (Program.Register(queue, port.FD())) so
// the interface's frames reach it.
func (g *Group) Open(ifname string, queue int) (*Port, error) {
	if g.closed {
		return nil, ring.ErrClosed
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("xsk: %w", err)
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xsk: socket: %w", err)
	}
	o := &g.opts
	p := &Port{
		g: g, fd: fd, ifindex: ifi.Index, queue: queue,
		frameMask:  uint64(o.FrameSize - 1),
		needWakeup: !o.NoNeedWakeup,
		busyPoll:   o.BusyPoll,
		reserve:    groupReserve(o),
	}
	for s := o.FrameSize; s > 1; s >>= 1 {
		p.frameShift++
	}
	if err := p.setup(ifname); err != nil {
		p.release()
		return nil, err
	}
	if g.owner < 0 {
		g.owner = fd
	}
	g.ports = append(g.ports, p)
	g.fillBounds()
	p.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	p.refill()
	return p, nil
}

// groupReserve is the number of free chunks refills leave in the pool for
// Alloc.
func groupReserve(o *Options) int {
	if !o.AdaptiveFill {
		return o.NumFrames / 4
	}
	return min(max(o.NumFrames/16, 2*ring.IdealBatchSize), o.NumFrames/4)
}

// fillBounds sets every socket's fill floor and ceiling from the number of
// sockets sharing the pool: one socket may hold at most half of the chunks
// refills may lend, and the floors of all together at most half as well.
func (g *Group) fillBounds() {
	o := &g.opts
	lend := o.NumFrames - groupReserve(o)
	for _, q := range g.ports {
		oldMin := q.fillMin
		if !o.AdaptiveFill {
			q.fillMin, q.fillMax = o.FillRingSize, o.FillRingSize
		} else {
			q.fillMax = max(min(o.FillRingSize, lend/2), 1)
			q.fillMin = max(min(o.FillMin, lend/(2*len(g.ports)), q.fillMax), 1)
		}
		if q.fillTarget <= oldMin { // at the floor: follow it
			q.fillTarget = q.fillMin
		}
		q.fillTarget = min(max(q.fillTarget, q.fillMin), q.fillMax)
	}
}

// FillTarget returns the number of chunks the socket currently keeps on its
// fill ring (see Options.FillMin).
func (p *Port) FillTarget() int { return p.fillTarget }

func (p *Port) setup(ifname string) error {
	g, o := p.g, &p.g.opts
	if g.owner < 0 {
		reg := unix.XDPUmemReg{
			Addr:     uint64(uintptr(unsafe.Pointer(&g.umem[0]))),
			Len:      uint64(len(g.umem)),
			Size:     uint32(o.FrameSize),
			Headroom: uint32(o.Headroom),
		}
		if err := setsockopt(p.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return fmt.Errorf("xsk: register UMEM: %w", err)
		}
	}
	for _, r := range []struct {
		opt, size int
	}{
		{unix.XDP_UMEM_FILL_RING, o.FillRingSize},
		{unix.XDP_UMEM_COMPLETION_RING, o.CompletionRingSize},
		{unix.XDP_RX_RING, o.RxRingSize},
		{unix.XDP_TX_RING, o.TxRingSize},
	} {
		if err := unix.SetsockoptInt(p.fd, unix.SOL_XDP, r.opt, r.size); err != nil {
			return fmt.Errorf("xsk: ring size option %d: %w", r.opt, err)
		}
	}
	var off unix.XDPMmapOffsets
	l := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(p.fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return fmt.Errorf("xsk: mmap offsets: %w", e)
	}
	var err error
	if p.fill, err = mapURing(p.fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, o.FillRingSize); err != nil {
		return err
	}
	if p.comp, err = mapURing(p.fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, o.CompletionRingSize); err != nil {
		return err
	}
	if p.rx, err = mapDRing(p.fd, unix.XDP_PGOFF_RX_RING, off.Rx, o.RxRingSize); err != nil {
		return err
	}
	if p.tx, err = mapDRing(p.fd, unix.XDP_PGOFF_TX_RING, off.Tx, o.TxRingSize); err != nil {
		return err
	}
	if o.TxBudget >= txBatch {
		// Needs the tx ring (set above); unknown before Linux 6.17.
		err := unix.SetsockoptInt(p.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, o.TxBudget)
		if err != nil && err != unix.ENOPROTOOPT {
			return fmt.Errorf("xsk: tx budget %d: %w", o.TxBudget, err)
		}
	}
	if o.BusyPoll {
		for _, s := range [][2]int{
			{unix.SO_PREFER_BUSY_POLL, 1},
			{unix.SO_BUSY_POLL, o.BusyPollUsec},
			{unix.SO_BUSY_POLL_BUDGET, o.BusyPollBudget},
		} {
			if err := unix.SetsockoptInt(p.fd, unix.SOL_SOCKET, s[0], s[1]); err != nil {
				return fmt.Errorf("xsk: busy-poll option %d: %w", s[0], err)
			}
		}
	}
	sa := &unix.SockaddrXDP{Ifindex: uint32(p.ifindex), QueueID: uint32(p.queue)}
	if g.owner >= 0 {
		// The kernel takes copy/zero-copy and need-wakeup from the UMEM's
		// first socket and refuses them here.
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(g.owner)
	} else {
		if o.ZeroCopy {
			sa.Flags |= unix.XDP_ZEROCOPY
		} else {
			sa.Flags |= unix.XDP_COPY
		}
		if !o.NoNeedWakeup {
			sa.Flags |= unix.XDP_USE_NEED_WAKEUP
		}
	}
	if err := unix.Bind(p.fd, sa); err != nil {
		return fmt.Errorf("xsk: bind to %s queue %d: %w", ifname, p.queue, err)
	}
	return nil
}

func setsockopt(fd, opt int, v unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(v), n, 0); e != 0 {
		return e
	}
	return nil
}

func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, size int, entry uintptr) ([]byte, error) {
	mem, err := unix.Mmap(fd, pgoff, int(off.Desc)+size*int(entry),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("xsk: map ring %#x: %w", pgoff, err)
	}
	return mem, nil
}

func mapURing(fd int, pgoff int64, off unix.XDPRingOffset, size int) (uring, error) {
	mem, err := mapRing(fd, pgoff, off, size, 8)
	if err != nil {
		return uring{}, err
	}
	return uring{
		prod:  (*uint32)(unsafe.Pointer(&mem[off.Producer])),
		cons:  (*uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags: (*uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:  uint32(size - 1),
		descs: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off.Desc])), size),
		mem:   mem,
	}, nil
}

func mapDRing(fd int, pgoff int64, off unix.XDPRingOffset, size int) (dring, error) {
	mem, err := mapRing(fd, pgoff, off, size, unsafe.Sizeof(unix.XDPDesc{}))
	if err != nil {
		return dring{}, err
	}
	return dring{
		prod:  (*uint32)(unsafe.Pointer(&mem[off.Producer])),
		cons:  (*uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags: (*uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:  uint32(size - 1),
		descs: unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&mem[off.Desc])), size),
		mem:   mem,
	}, nil
}

// FD returns the socket's file descriptor (for Program.Register).
func (p *Port) FD() int { return p.fd }

// Queue returns the interface queue the socket is bound to.
func (p *Port) Queue() int { return p.queue }

// Pool implements ring.Port.
func (p *Port) Pool() *ring.Pool { return p.g.pool }

// refill tops the fill ring up to the socket's fill target, keeping
// p.reserve free chunks in the pool for Alloc, and adapts the target to what
// the kernel took since the last refill (see Options.FillMin).
func (p *Port) refill() {
	pool := p.g.pool
	r := &p.fill
	prod := *r.prod
	occ := int(prod - atomic.LoadUint32(r.cons))
	used := p.fillLevel - occ
	p.fillTaken += used
	if used*2 > p.fillTarget && p.fillTarget < p.fillMax {
		p.fillTarget = min(2*p.fillTarget, p.fillMax)
		p.FillGrows++
	}
	if p.fillCalls++; p.fillCalls >= fillWindow {
		if p.fillTaken*4 < p.fillTarget && p.fillTarget > p.fillMin {
			p.fillTarget = max(p.fillTarget/2, p.fillMin)
			p.FillShrinks++
		}
		p.fillCalls, p.fillTaken = 0, 0
	}
	want, free := p.fillTarget-occ, pool.Free()-p.reserve
	if free < want {
		p.FillShort++
	}
	k := min(want, free)
	if k <= 0 {
		p.fillLevel = occ
		return
	}
	for i := 0; i < k; i++ {
		idx, _ := pool.Take()
		r.descs[prod&r.mask] = uint64(idx) << p.frameShift
		prod++
	}
	atomic.StoreUint32(r.prod, prod)
	p.fillLevel = occ + k
}

// Receive implements ring.Port.
func (p *Port) Receive(frames []ring.Frame) (int, error) {
	if p.closed.Load() {
		return 0, ring.ErrClosed
	}
	r := &p.rx
	cons := *r.cons
	avail := int(atomic.LoadUint32(r.prod) - cons)
	if avail == 0 {
		p.refill()
		if p.busyPoll || (p.needWakeup && atomic.LoadUint32(p.fill.flags)&unix.XDP_RING_NEED_WAKEUP != 0) {
			p.RxWakeups++
			unix.Syscall6(unix.SYS_RECVFROM, uintptr(p.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		}
		return 0, nil
	}
	pool := p.g.pool
	n := 0
	for i := 0; i < avail && n < len(frames); i++ {
		d := r.descs[cons&r.mask]
		cons++
		f, ok := pool.GetIndex(uint32(d.Addr>>p.frameShift), int(d.Addr&p.frameMask), int(d.Len))
		if !ok {
			p.BadDescs++
			continue
		}
		frames[n] = f
		n++
	}
	atomic.StoreUint32(r.cons, cons)
	p.RxPackets += uint64(n)
	p.refill()
	return n, nil
}

// RxPending implements ring.RxPender: whether received frames wait on the
// rx ring.
func (p *Port) RxPending() bool { return atomic.LoadUint32(p.rx.prod) != *p.rx.cons }

// PollPrepare implements ring.Pollable: it refills the fill ring and reports
// whether frames are already waiting.
func (p *Port) PollPrepare() bool {
	if atomic.LoadUint32(p.rx.prod) != *p.rx.cons {
		return true
	}
	p.refill()
	return false
}

// InFlight implements ring.Pollable: frames transmitted whose completion
// Complete has not reaped yet.
func (p *Port) InFlight() int { return p.inFlight }

// PollFD implements ring.Pollable: the socket, readable when frames arrive.
func (p *Port) PollFD() int { return int(p.pfd[0].Fd) }

// Wait implements ring.Port with poll(2).
func (p *Port) Wait(timeout time.Duration) (bool, error) {
	if p.closed.Load() {
		return false, ring.ErrClosed
	}
	if atomic.LoadUint32(p.rx.prod) != *p.rx.cons {
		return true, nil
	}
	p.refill()
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	for {
		n, err := unix.Poll(p.pfd[:], ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("xsk: poll: %w", err)
		}
		if p.closed.Load() {
			return false, ring.ErrClosed
		}
		return n > 0 && atomic.LoadUint32(p.rx.prod) != *p.rx.cons, nil
	}
}

// Transmit implements ring.Port. Frames of another Pool are copied into this
// Group's chunks (and released to their own Pool).
func (p *Port) Transmit(frames []ring.Frame) (int, error) {
	if p.closed.Load() {
		return 0, ring.ErrClosed
	}
	r := &p.tx
	pool := p.g.pool
	prod := *r.prod
	room := int(r.mask+1) - int(prod-atomic.LoadUint32(r.cons))
	if room < len(frames) {
		p.Complete()
		room = int(r.mask+1) - int(prod-atomic.LoadUint32(r.cons))
	}
	n := 0
	for ; n < len(frames) && n < room; n++ {
		f := &frames[n]
		if !pool.Owns(f) {
			c, ok := pool.Get()
			if !ok || !ring.CopyInto(&c, f) {
				if ok {
					pool.Put(&c)
				}
				break
			}
			ring.Release(frames[n : n+1])
			*f = c
			p.TxCopies++
		}
		r.descs[prod&r.mask] = unix.XDPDesc{
			Addr: uint64(f.Index())<<p.frameShift | uint64(f.Offset()),
			Len:  uint32(f.Len()),
		}
		prod++
	}
	if n == 0 {
		return 0, nil
	}
	atomic.StoreUint32(r.prod, prod)
	p.TxPackets += uint64(n)
	p.inFlight += n
	if p.deferKick && room-n >= int(r.mask+1)/4 {
		return n, nil // Flush kicks at the end of the caller's batch
	}
	if !p.needWakeup || atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 {
		if err := p.kick(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// kick asks the kernel to process the tx ring. In copy mode one sendto
// sends at most TxBudget frames (32 on kernels before 6.17) and returns
// EAGAIN while more wait, so kick repeats it until the ring is drained, the
// kernel reports a full device queue (EBUSY/ENOBUFS) or a bound is reached.
func (p *Port) kick() error {
	p.TxWakeups++
	for i := 0; i <= int(p.tx.mask+1)/txBatch; i++ {
		p.TxKicks++
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(p.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0, unix.EAGAIN, unix.EINTR:
			if atomic.LoadUint32(p.tx.cons) == *p.tx.prod {
				return nil
			}
		case unix.EBUSY, unix.ENOBUFS:
			p.TxKickBusy++
			return nil
		default:
			return fmt.Errorf("xsk: sendto: %w", e)
		}
	}
	return nil
}

// DeferKicks implements ring.Flusher: from now on Transmit leaves the
// wake-up of the kernel to Flush (unless its ring runs short of room), so
// one sendto carries a whole batch. The caller must Flush after each batch.
func (p *Port) DeferKicks() { p.deferKick = true }

// Unkicked implements ring.Flusher: frames on the tx ring the kernel has not
// taken yet. They include frames a kick left behind (EBUSY/ENOBUFS from a
// full device queue), so the caller's next Flush retries them even when no
// new frame comes: in copy mode only a sendto sends them, and their chunks
// may be the ones the fill ring waits for.
func (p *Port) Unkicked() int {
	if p.closed.Load() {
		return 0
	}
	return int(*p.tx.prod - atomic.LoadUint32(p.tx.cons))
}

// Flush implements ring.Flusher: it kicks the kernel to send what is on the
// tx ring when the ring asks for it (with need-wakeup; always in copy mode)
// or need-wakeup is off. Without deferred kicks Transmit kicks already, and
// Flush retries after a busy kick.
func (p *Port) Flush() error {
	if p.closed.Load() {
		return ring.ErrClosed
	}
	if atomic.LoadUint32(p.tx.cons) == *p.tx.prod {
		return nil
	}
	if p.needWakeup && atomic.LoadUint32(p.tx.flags)&unix.XDP_RING_NEED_WAKEUP == 0 {
		return nil // the driver is still sending; it takes these too
	}
	return p.kick()
}

// Counters is a snapshot of a Port's own counters (see Port's fields).
type Counters struct {
	RxPackets, RxWakeups, FillShort           uint64
	TxPackets, TxKicks, TxWakeups, TxKickBusy uint64
}

// published holds the Port's counters for other goroutines; Complete
// stores them (once per worker step).
type published struct {
	rx, rxWake, fillShort, tx, kicks, wakeups, busy atomic.Uint64
}

func (p *Port) publish() {
	set := func(a *atomic.Uint64, v uint64) {
		if a.Load() != v {
			a.Store(v)
		}
	}
	set(&p.pub.rx, p.RxPackets)
	set(&p.pub.rxWake, p.RxWakeups)
	set(&p.pub.fillShort, p.FillShort)
	set(&p.pub.tx, p.TxPackets)
	set(&p.pub.kicks, p.TxKicks)
	set(&p.pub.wakeups, p.TxWakeups)
	set(&p.pub.busy, p.TxKickBusy)
}

// Published returns the Port's counters as of the last Complete (or Close).
// Safe from any goroutine.
func (p *Port) Published() Counters {
	return Counters{
		RxPackets: p.pub.rx.Load(), RxWakeups: p.pub.rxWake.Load(), FillShort: p.pub.fillShort.Load(),
		TxPackets: p.pub.tx.Load(), TxKicks: p.pub.kicks.Load(),
		TxWakeups: p.pub.wakeups.Load(), TxKickBusy: p.pub.busy.Load(),
	}
}

// Release implements ring.Port.
func (p *Port) Release(frames []ring.Frame) { ring.Release(frames) }

// Alloc implements ring.Port.
func (p *Port) Alloc(frames []ring.Frame) int {
	pool := p.g.pool
	for i := range frames {
		f, ok := pool.Get()
		if !ok {
			return i
		}
		frames[i] = f
	}
	return len(frames)
}

// Complete implements ring.Port.
func (p *Port) Complete() int {
	if p.closed.Load() {
		return 0
	}
	r := &p.comp
	cons := *r.cons
	n := int(atomic.LoadUint32(r.prod) - cons)
	pool := p.g.pool
	for i := 0; i < n; i++ {
		pool.PutIndex(uint32(r.descs[cons&r.mask] >> p.frameShift))
		cons++
	}
	atomic.StoreUint32(r.cons, cons)
	p.inFlight = max(p.inFlight-n, 0)
	p.publish()
	return n
}

// Stats returns the kernel's counters for the socket (XDP_STATISTICS).
func (p *Port) Stats() (unix.XDPStatistics, error) {
	var s unix.XDPStatistics
	l := uint32(unsafe.Sizeof(s))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(p.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&s)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return s, fmt.Errorf("xsk: statistics: %w", e)
	}
	return s, nil
}

// Close closes the socket (the kernel drops its XSKMAP entry), takes back
// the chunks still on its rings and unmaps them. Chunks inside the kernel at
// that moment are lost to the Pool. Call it from the Port's goroutine, or
// after that goroutine stopped.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return ring.ErrClosed
	}
	p.publish()
	err := p.release()
	for i, q := range p.g.ports {
		if q == p {
			p.g.ports = append(p.g.ports[:i], p.g.ports[i+1:]...)
			break
		}
	}
	p.g.fillBounds()
	return err
}

func (p *Port) release() error {
	var errs []error
	if p.fd >= 0 {
		if err := unix.Close(p.fd); err != nil {
			errs = append(errs, fmt.Errorf("xsk: close: %w", err))
		}
		p.fd = -1
	}
	pool := p.g.pool
	// The kernel no longer touches the rings: reclaim what is on them.
	if p.fill.mem != nil {
		for c := *p.fill.cons; c != *p.fill.prod; c++ {
			pool.PutIndex(uint32(p.fill.descs[c&p.fill.mask] >> p.frameShift))
		}
	}
	if p.comp.mem != nil {
		for c := *p.comp.cons; c != *p.comp.prod; c++ {
			pool.PutIndex(uint32(p.comp.descs[c&p.comp.mask] >> p.frameShift))
		}
	}
	for _, r := range []*dring{&p.rx, &p.tx} {
		if r.mem != nil {
			for c := *r.cons; c != *r.prod; c++ {
				pool.PutIndex(uint32(r.descs[c&r.mask].Addr >> p.frameShift))
			}
		}
	}
	for _, m := range [][]byte{p.fill.mem, p.comp.mem, p.rx.mem, p.tx.mem} {
		if m != nil {
			if err := unix.Munmap(m); err != nil {
				errs = append(errs, fmt.Errorf("xsk: unmap ring: %w", err))
			}
		}
	}
	p.fill, p.comp, p.rx, p.tx = uring{}, uring{}, dring{}, dring{}
	return errors.Join(errs...)
}
