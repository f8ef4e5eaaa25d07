package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// HoldConfig sizes a worker's hold-on-miss storage. Zero fields take the
// defaults shown.
type HoldConfig struct {
	// PerEID bounds the packets held for one (instance-ID, EID) (default 8).
	PerEID int `mapstructure:"per_eid"`
	// MaxPackets bounds the packets held by the worker; it is also the
	// number of preallocated buffers (default 1024).
	MaxPackets int `mapstructure:"max_packets"`
	// MaxBytes bounds the bytes held by the worker (default
	// MaxPackets*FrameSize, i.e. no bound beyond the buffers).
	MaxBytes int `mapstructure:"-"`
	// FrameSize is the size of one hold buffer: longer frames are dropped as
	// DropHoldOversize (default 2048).
	FrameSize int `mapstructure:"-"`
	// MaxEIDs bounds the destinations tracked at once (default 1024).
	MaxEIDs int `mapstructure:"max_eids"`
	// RetryInterval is the least time between two MissEvents for one EID
	// (default 1 s).
	RetryInterval time.Duration `mapstructure:"retry_interval"`
	// HoldTime is how long a packet may wait for its mapping before it is
	// dropped as DropHoldTimeout (default 3 s).
	HoldTime time.Duration `mapstructure:"hold_time"`
	// MissQueueLen is the capacity of the MissEvent queue to the slow path,
	// rounded up to a power of two (default 1024).
	MissQueueLen int `mapstructure:"-"`
	// ReleaseQueueLen is the capacity of the release queue from the slow
	// path, rounded up to a power of two (default 256).
	ReleaseQueueLen int `mapstructure:"-"`
}

// withDefaults fills zero fields and checks the rest.
func (c HoldConfig) withDefaults() (HoldConfig, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.PerEID, 8)
	def(&c.MaxPackets, 1024)
	def(&c.FrameSize, 2048)
	def(&c.MaxBytes, c.MaxPackets*c.FrameSize)
	def(&c.MaxEIDs, 1024)
	def(&c.MissQueueLen, 1024)
	def(&c.ReleaseQueueLen, 256)
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.HoldTime == 0 {
		c.HoldTime = 3 * time.Second
	}
	switch {
	case c.PerEID < 0, c.MaxPackets < 0, c.FrameSize < 0, c.MaxBytes < 0, c.MaxEIDs < 0,
		c.MissQueueLen < 0, c.ReleaseQueueLen < 0, c.RetryInterval < 0, c.HoldTime < 0:
		return c, errors.New("fastpath: hold config: negative bound")
	case c.MaxPackets > 1<<20, c.MaxEIDs > 1<<20, c.FrameSize > 1<<16:
		return c, fmt.Errorf("fastpath: hold config: MaxPackets/MaxEIDs ≤ 2^20 and FrameSize ≤ 65536, got %d/%d/%d",
			c.MaxPackets, c.MaxEIDs, c.FrameSize)
	}
	return c, nil
}

// MissEvent tells the slow path that a worker missed the map-cache for a
// destination EID. A worker sends at most one per EID per RetryInterval.
type MissEvent struct {
	// Worker is the id of the worker that missed.
	Worker int
	// IID is the instance-ID of the ingress interface.
	IID uint32
	// Dst is the destination EID that missed.
	Dst netip.Addr
	// Src is the source EID of the packet, for SMR and gleaning decisions.
	Src netip.Addr
	// Time is the worker's monotonic clock (ns) when the miss happened.
	Time int64
}

// Release tells a worker that the slow path installed a mapping (positive or
// negative) for Prefix in IID, so held packets for destinations it covers
// can be sent.
type Release struct {
	// IID is the instance-ID of the installed mapping.
	IID uint32
	// Prefix is the installed EID prefix; it covers every held destination
	// it contains.
	Prefix netip.Prefix
	// Negative is set when the mapping has no RLOCs; Action then says what
	// to do with the packets (RFC 9301 §5.4).
	Negative bool
	// Action is the mapping record's ACT field for negative mappings.
	Action wire.Action
}

// Held is one held packet handed back to the worker by Service.
type Held struct {
	// IID and Dst are the key the packet was held under.
	IID uint32
	Dst netip.Addr
	// Meta is the opaque value the worker passed to Hold (e.g. ingress port).
	Meta uint32
	// Arrived is the worker's clock when the packet was held.
	Arrived int64
	// Data is the packet. It is valid only until the callback returns.
	Data []byte
}

// ReleaseFunc receives released packets, in arrival order. It runs on the
// worker goroutine inside Service; it may call Hold again.
type ReleaseFunc func(r *Release, p *Held)

// MissQueue carries MissEvents from one worker to the slow path. It is a
// bounded lock-free queue: the worker never waits on it (full means the
// event is dropped and counted as DropMissQueueFull).
type MissQueue struct {
	q boundedQueue[MissEvent]
}

// Pop removes the oldest event into *ev and reports whether there was one.
// Safe from any number of slow-path goroutines. The slow path polls it
// (e.g. every millisecond): the worker never signals.
func (m *MissQueue) Pop(ev *MissEvent) bool { return m.q.pop(ev) }

// Len returns the approximate number of queued events.
func (m *MissQueue) Len() int { return m.q.len() }

// ReleaseQueue carries Releases from the slow path to one worker, which
// drains it at the start of every batch (HoldQueue.Service).
type ReleaseQueue struct {
	q    boundedQueue[Release]
	wake func() // wakes the worker when it sleeps (set by NewWorker)
}

// Push queues r for the worker and wakes the worker if it sleeps. Safe from
// any number of goroutines. It reports false when the queue is full; the
// packets held for that prefix then wait for their hold time to run out
// unless a later Push succeeds.
func (rq *ReleaseQueue) Push(r Release) bool {
	ok := rq.q.push(&r)
	if rq.wake != nil {
		rq.wake()
	}
	return ok
}

// Len returns the approximate number of queued releases.
func (rq *ReleaseQueue) Len() int { return rq.q.len() }

// heldPkt is the bookkeeping of one hold buffer.
type heldPkt struct {
	prev, next int32 // global arrival-order list
	nextEID    int32 // per-EID arrival-order list; reused as the release chain
	eid        int32 // index into HoldQueue.eids
	n          int32 // bytes of data
	meta       uint32
	iid        uint32     // the key it was held under, kept here because
	dst        netip.Addr // the EID slot is freed before the packet is handed back
	arrived    int64
}

// eidState is one tracked destination.
type eidState struct {
	addr       netip.Addr
	iid        uint32
	hash       uint32
	head, tail int32 // its held packets, oldest first
	count      int32
	live       bool
	missSent   bool
	lastMiss   int64
}

const none = -1

// HoldQueue is a worker's hold-on-miss storage: bounded per-EID queues of
// packet copies in preallocated buffers, the MissEvent queue to the slow path
// and the release queue back from it. All methods except Misses and Releases
// (and the methods of the queues they return) belong to the worker goroutine.
// Nothing allocates after NewHoldQueue.
type HoldQueue struct {
	cfg    HoldConfig
	worker int
	ctr    *Counters
	retry  int64
	hold   int64

	buf       []byte
	pkts      []heldPkt
	free      []int32 // stack of free buffer indices
	head      int32   // oldest held packet
	tail      int32   // newest held packet
	heldBytes int

	eids    []eidState
	eidFree []int32
	tab     []int32 // open addressing (linear probing) over eids; none = empty
	tabMask uint32
	sweep   int

	misses   MissQueue
	releases ReleaseQueue

	rel Release // the release being processed, kept here so it need not escape
	out Held
}

// NewHoldQueue allocates the hold storage of worker, counting into ctr.
func NewHoldQueue(cfg HoldConfig, worker int, ctr *Counters) (*HoldQueue, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if ctr == nil {
		return nil, errors.New("fastpath: NewHoldQueue: nil counters")
	}
	h := &HoldQueue{
		cfg:    cfg,
		worker: worker,
		ctr:    ctr,
		retry:  int64(cfg.RetryInterval),
		hold:   int64(cfg.HoldTime),
		buf:    make([]byte, cfg.MaxPackets*cfg.FrameSize),
		pkts:   make([]heldPkt, cfg.MaxPackets),
		free:   make([]int32, cfg.MaxPackets),
		head:   none,
		tail:   none,
		eids:   make([]eidState, cfg.MaxEIDs),
	}
	for i := range h.free {
		h.free[i] = int32(cfg.MaxPackets - 1 - i)
	}
	h.eidFree = make([]int32, cfg.MaxEIDs)
	for i := range h.eidFree {
		h.eidFree[i] = int32(cfg.MaxEIDs - 1 - i)
	}
	size := 2
	for size < 2*cfg.MaxEIDs {
		size <<= 1
	}
	h.tab = make([]int32, size)
	for i := range h.tab {
		h.tab[i] = none
	}
	h.tabMask = uint32(size - 1)
	h.misses.q.init(cfg.MissQueueLen)
	h.releases.q.init(cfg.ReleaseQueueLen)
	return h, nil
}

// Misses returns the queue the slow path drains MissEvents from.
func (h *HoldQueue) Misses() *MissQueue { return &h.misses }

// Releases returns the queue the slow path pushes Releases into.
func (h *HoldQueue) Releases() *ReleaseQueue { return &h.releases }

// HeldPackets returns the number of packets held (worker goroutine only).
func (h *HoldQueue) HeldPackets() int { return len(h.pkts) - len(h.free) }

// HeldBytes returns the bytes held (worker goroutine only).
func (h *HoldQueue) HeldBytes() int { return h.heldBytes }

// TrackedEIDs returns the number of destinations tracked, with held packets
// or a recent MissEvent (worker goroutine only).
func (h *HoldQueue) TrackedEIDs() int { return len(h.eids) - len(h.eidFree) }

// Hold records a map-cache miss for (iid, dst) at time now (a monotonic
// nanosecond clock): it queues a MissEvent unless one went out for this EID
// less than RetryInterval ago, and copies pkt into a hold buffer. It reports
// whether the packet was held; when it was not, the drop is already counted.
// meta is returned with the packet on release.
func (h *HoldQueue) Hold(now int64, iid uint32, dst, src netip.Addr, meta uint32, pkt []byte) bool {
	hash := eidHash(iid, dst)
	s := h.lookup(iid, dst, hash)
	if s == none {
		s = h.newEID(iid, dst, hash)
		if s == none {
			h.ctr.Drop(DropHoldNoSlot)
			return false
		}
	}
	e := &h.eids[s]
	if !e.missSent || now-e.lastMiss >= h.retry {
		ev := MissEvent{Worker: h.worker, IID: iid, Dst: dst, Src: src, Time: now}
		if h.misses.q.push(&ev) {
			e.missSent = true
			e.lastMiss = now
			h.ctr.Inc(CounterMissEvent)
		} else {
			h.ctr.Drop(DropMissQueueFull)
		}
	}
	switch {
	case len(pkt) > h.cfg.FrameSize:
		h.ctr.Drop(DropHoldOversize)
		return false
	case int(e.count) >= h.cfg.PerEID:
		h.ctr.Drop(DropHoldFullEID)
		return false
	case len(h.free) == 0 || h.heldBytes+len(pkt) > h.cfg.MaxBytes:
		h.ctr.Drop(DropHoldFullGlobal)
		return false
	}
	p := h.free[len(h.free)-1]
	h.free = h.free[:len(h.free)-1]
	off := int(p) * h.cfg.FrameSize
	copy(h.buf[off:off+h.cfg.FrameSize], pkt)
	hp := &h.pkts[p]
	*hp = heldPkt{prev: h.tail, next: none, nextEID: none, eid: s, n: int32(len(pkt)), meta: meta,
		iid: iid, dst: dst, arrived: now}
	if h.tail == none {
		h.head = p
	} else {
		h.pkts[h.tail].next = p
	}
	h.tail = p
	if e.tail == none {
		e.head = p
	} else {
		h.pkts[e.tail].nextEID = p
	}
	e.tail = p
	e.count++
	h.heldBytes += len(pkt)
	h.ctr.Inc(CounterHeld)
	return true
}

// Service runs the hold queue's per-batch work at time now: it drains the
// release queue, handing every held packet of a destination covered by a
// released prefix to fn (in arrival order per release), drops packets held
// longer than HoldTime, and forgets a few idle destinations. Call it from
// the worker at the start of each batch.
func (h *HoldQueue) Service(now int64, fn ReleaseFunc) {
	for h.releases.q.pop(&h.rel) {
		h.release(&h.rel, fn)
	}
	h.rel = Release{}
	h.expire(now)
	h.sweepIdle(now, 8)
}

// release hands back the packets covered by r.
func (h *HoldQueue) release(r *Release, fn ReleaseFunc) {
	if !r.Prefix.IsValid() {
		return
	}
	chain, last := int32(none), int32(none)
	appendChain := func(p int32) {
		h.pkts[p].nextEID = none
		if last == none {
			chain = p
		} else {
			h.pkts[last].nextEID = p
		}
		last = p
	}
	addr := r.Prefix.Addr()
	if r.Prefix.Bits() == addr.BitLen() {
		// A host prefix covers exactly one destination: walk its own list.
		s := h.lookup(r.IID, addr, eidHash(r.IID, addr))
		if s == none {
			return
		}
		e := &h.eids[s]
		for p := e.head; p != none; {
			next := h.pkts[p].nextEID
			h.unlink(p)
			appendChain(p)
			p = next
		}
		h.deleteEID(s)
	} else if h.head != none || h.TrackedEIDs() > 0 {
		for p := h.head; p != none; {
			next := h.pkts[p].next
			if hp := &h.pkts[p]; hp.iid == r.IID && r.Prefix.Contains(hp.dst) {
				h.unlink(p)
				appendChain(p)
			}
			p = next
		}
		for s := range h.eids {
			e := &h.eids[s]
			if e.live && e.iid == r.IID && r.Prefix.Contains(e.addr) {
				h.deleteEID(int32(s))
			}
		}
	}
	// The structures are consistent again: fn may call Hold.
	for p := chain; p != none; {
		hp := &h.pkts[p]
		next := hp.nextEID
		off := int(p) * h.cfg.FrameSize
		h.out = Held{IID: hp.iid, Dst: hp.dst, Meta: hp.meta, Arrived: hp.arrived,
			Data: h.buf[off : off+int(hp.n) : off+int(hp.n)]}
		h.ctr.Inc(CounterReleased)
		fn(r, &h.out)
		h.out = Held{}
		h.free = append(h.free, p)
		p = next
	}
}

// unlink removes packet p from the global list and from the head of its
// EID's list (it is always the oldest of its EID when removed), and returns
// its bytes to the budget. The buffer is not freed.
func (h *HoldQueue) unlink(p int32) {
	hp := &h.pkts[p]
	if hp.prev == none {
		h.head = hp.next
	} else {
		h.pkts[hp.prev].next = hp.next
	}
	if hp.next == none {
		h.tail = hp.prev
	} else {
		h.pkts[hp.next].prev = hp.prev
	}
	e := &h.eids[hp.eid]
	e.head = hp.nextEID
	if e.head == none {
		e.tail = none
	}
	e.count--
	h.heldBytes -= int(hp.n)
}

// expire drops packets held for HoldTime or longer.
func (h *HoldQueue) expire(now int64) {
	for h.head != none && now-h.pkts[h.head].arrived >= h.hold {
		p := h.head
		s := h.pkts[p].eid
		h.unlink(p)
		h.free = append(h.free, p)
		h.ctr.Drop(DropHoldTimeout)
		if e := &h.eids[s]; e.count == 0 && now-e.lastMiss >= h.retry {
			h.deleteEID(s)
		}
	}
}

// sweepIdle examines n destination slots and forgets those with no held
// packets whose last MissEvent is older than RetryInterval.
func (h *HoldQueue) sweepIdle(now int64, n int) {
	for ; n > 0; n-- {
		s := h.sweep
		h.sweep++
		if h.sweep == len(h.eids) {
			h.sweep = 0
		}
		if e := &h.eids[s]; e.live && e.count == 0 && (!e.missSent || now-e.lastMiss >= h.retry) {
			h.deleteEID(int32(s))
		}
	}
}

// eidHash mixes the instance-ID and the 16-byte form of the address (the
// family is part of the key through the IPv4 flag).
func eidHash(iid uint32, a netip.Addr) uint32 {
	b := a.As16()
	x := binary.BigEndian.Uint64(b[:8])
	y := binary.BigEndian.Uint64(b[8:])
	f := uint64(iid) << 1
	if a.Is4() {
		f |= 1
	}
	h := (x ^ f) * 0x9e3779b97f4a7c15
	h ^= y
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return uint32(h)
}

// lookup returns the slot of (iid, dst) or none.
func (h *HoldQueue) lookup(iid uint32, dst netip.Addr, hash uint32) int32 {
	for i := hash & h.tabMask; ; i = (i + 1) & h.tabMask {
		s := h.tab[i]
		if s == none {
			return none
		}
		if e := &h.eids[s]; e.hash == hash && e.iid == iid && e.addr == dst {
			return s
		}
	}
}

// newEID tracks (iid, dst); none when every slot is in use.
func (h *HoldQueue) newEID(iid uint32, dst netip.Addr, hash uint32) int32 {
	if len(h.eidFree) == 0 {
		return none
	}
	s := h.eidFree[len(h.eidFree)-1]
	h.eidFree = h.eidFree[:len(h.eidFree)-1]
	h.eids[s] = eidState{addr: dst, iid: iid, hash: hash, head: none, tail: none, live: true}
	i := hash & h.tabMask
	for h.tab[i] != none {
		i = (i + 1) & h.tabMask
	}
	h.tab[i] = s
	return s
}

// deleteEID stops tracking slot s (its packets must already be unlinked),
// closing the gap in the probe sequence by backward shifting.
func (h *HoldQueue) deleteEID(s int32) {
	e := &h.eids[s]
	i := e.hash & h.tabMask
	for h.tab[i] != s {
		i = (i + 1) & h.tabMask
	}
	for j := i; ; {
		j = (j + 1) & h.tabMask
		t := h.tab[j]
		if t == none {
			break
		}
		home := h.eids[t].hash & h.tabMask
		// t may move to i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			h.tab[i] = t
			i = j
		}
	}
	h.tab[i] = none
	*e = eidState{head: none, tail: none}
	h.eidFree = append(h.eidFree, s)
}
