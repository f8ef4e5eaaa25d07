package fastpath

import (
	"time"

	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// Outer IPv4 reassembly (RFC 9300 §7.1: an ITR that fragments the
// encapsulated packet leaves the reassembly to the ETR; RFC 791 §3.2).
//
// Each worker keeps a small table of partial datagrams addressed to its
// RLOC, keyed by (source, destination, identification, protocol) as RFC 791
// §2.3 says. Every slot owns a buffer preallocated at NewWorker, so a
// fragment costs a copy and never an allocation. Fragments that duplicate or
// overlap received ones, that end beyond the buffer, or that find every slot
// busy are dropped (DropFragment, with an ExtraReasm* detail counter); a
// datagram not complete after reasmTimeout is dropped with the fragments it
// held. A complete datagram is copied into a fresh frame of the ingress
// port, its header rewritten as unfragmented, and processed like a received
// packet.

const (
	// reasmSlots bounds the partial datagrams a worker keeps.
	reasmSlots = 64
	// reasmMaxPieces bounds the fragments of one datagram (rloc's ITR
	// sends two).
	reasmMaxPieces = 8
	// reasmTimeout is how long a partial datagram waits for its other
	// fragments (far below RFC 791's 15 s: LISP fragments travel together).
	reasmTimeout = int64(2 * time.Second)
	// reasmMinBuf is the reassembly buffer size when no port's pool says
	// more.
	reasmMinBuf = 2048
	// reasmMaxL2 is the largest link-layer header kept (Ethernet with two
	// VLAN tags).
	reasmMaxL2 = wire.EthernetLen + 8
)

// reasmKey identifies the fragments of one datagram (RFC 791 §2.3).
type reasmKey struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

// reasmEntry is one partial datagram.
type reasmEntry struct {
	key    reasmKey
	used   bool
	start  int64 // worker clock when the first fragment arrived
	total  int   // payload length, -1 until the last fragment arrived
	have   int   // payload bytes received
	hl     int   // header length of the offset-0 fragment, 0 until it arrived
	l2n    int
	l2     [reasmMaxL2]byte
	hdr    [60]byte
	pieces int
	piece  [reasmMaxPieces]struct{ lo, hi int }
	buf    []byte // the payload, by fragment offset
}

// reasmTable is a worker's reassembly state.
type reasmTable struct {
	live int // entries in use
	ent  [reasmSlots]reasmEntry
}

// newReasmTable sizes the buffers by the largest packet a frame of any of
// ports' pools holds.
func newReasmTable(ports []ring.Port) *reasmTable {
	size := reasmMinBuf
	for _, p := range ports {
		if pl := p.Pool(); pl != nil {
			size = max(size, pl.ChunkSize()-pl.DefaultHeadroom())
		}
	}
	t := new(reasmTable)
	slab := make([]byte, reasmSlots*size)
	for i := range t.ent {
		t.ent[i].buf = slab[i*size : (i+1)*size : (i+1)*size]
	}
	return t
}

// find returns the entry of k, or nil.
func (t *reasmTable) find(k *reasmKey) *reasmEntry {
	for i := range t.ent {
		if e := &t.ent[i]; e.used && e.key == *k {
			return e
		}
	}
	return nil
}

// insert takes a free entry for k, or returns nil when none is free.
func (t *reasmTable) insert(k *reasmKey, now int64) *reasmEntry {
	for i := range t.ent {
		if e := &t.ent[i]; !e.used {
			e.key, e.used, e.start = *k, true, now
			e.total, e.have, e.hl, e.l2n, e.pieces = -1, 0, 0, 0, 0
			t.live++
			return e
		}
	}
	return nil
}

// release frees e.
func (t *reasmTable) release(e *reasmEntry) {
	e.used = false
	t.live--
}

// reasmDiscard drops the partial datagram e, counting the fragments it held
// as DropFragment and the event as extra reason x.
func (w *Worker) reasmDiscard(e *reasmEntry, x Extra) {
	w.extra[x]++
	w.c.DropN(DropFragment, uint64(e.pieces))
	w.reasm.release(e)
}

// reasmExpire drops the partial datagrams older than reasmTimeout.
func (w *Worker) reasmExpire() {
	t := w.reasm
	for i := range t.ent {
		if e := &t.ent[i]; e.used && w.now-e.start > reasmTimeout {
			w.reasmDiscard(e, ExtraReasmTimeout)
		}
	}
}

// reassemble takes the outer IPv4 fragment f, whose validated header (to
// our RLOC, checksum correct) starts at off, into the reassembly table, and
// when it completes its datagram processes the whole packet as received on
// port slot.
func (w *Worker) reassemble(slot int, f *ring.Frame, off int) {
	b := f.Bytes()
	ip := wire.IPv4(b[off:])
	hl := ip.HeaderLength()
	data := b[off+hl : off+int(ip.TotalLength())]
	lo := ip.FragmentOffset()
	hi := lo + len(data)
	mf := ip.FlagsFragment()&wire.IPv4FlagMF != 0
	if len(data) == 0 || mf && len(data)&7 != 0 {
		// RFC 791 §3.2: every fragment but the last carries a multiple of
		// 8 bytes; an empty fragment carries nothing.
		w.drop(f, DropBadLength)
		return
	}
	t := w.reasm
	k := reasmKey{src: [4]byte(b[off+12 : off+16]), dst: [4]byte(b[off+16 : off+20]), id: ip.ID(), proto: ip.Protocol()}
	e := t.find(&k)
	if e == nil {
		if e = t.insert(&k, w.now); e == nil {
			w.extra[ExtraReasmFull]++
			w.drop(f, DropFragment)
			return
		}
	}
	if hi > len(e.buf) || lo == 0 && off > reasmMaxL2 || e.pieces == reasmMaxPieces {
		w.drop(f, DropFragment)
		w.reasmDiscard(e, ExtraReasmOversize)
		return
	}
	if e.total >= 0 && (hi > e.total || !mf && hi != e.total) {
		w.extra[ExtraReasmOverlap]++ // beyond (or a second, different) end
		w.drop(f, DropFragment)
		return
	}
	for i := 0; i < e.pieces; i++ {
		p := &e.piece[i]
		if p.lo == lo && p.hi == hi {
			w.extra[ExtraReasmDuplicate]++
			w.drop(f, DropFragment)
			return
		}
		if lo < p.hi && p.lo < hi || !mf && p.hi > hi {
			w.extra[ExtraReasmOverlap]++
			w.drop(f, DropFragment)
			return
		}
	}
	copy(e.buf[lo:], data)
	e.piece[e.pieces].lo, e.piece[e.pieces].hi = lo, hi
	e.pieces++
	e.have += len(data)
	if !mf {
		e.total = hi
	}
	if lo == 0 {
		e.hl = hl
		copy(e.hdr[:], b[off:off+hl])
		e.l2n = off
		copy(e.l2[:], b[:off])
	}
	w.free(f)
	if e.total < 0 || e.hl == 0 || e.have != e.total {
		return
	}
	var g ring.Frame
	if !w.alloc(slot, &g) {
		w.c.DropN(DropFragment, uint64(e.pieces))
		t.release(e)
		return
	}
	n := e.l2n + e.hl + e.total
	if e.hl+e.total > 0xffff || !g.SetLen(n) {
		w.free(&g)
		w.reasmDiscard(e, ExtraReasmOversize)
		return
	}
	gb := g.Bytes()
	copy(gb, e.l2[:e.l2n])
	copy(gb[e.l2n:], e.hdr[:e.hl])
	copy(gb[e.l2n+e.hl:], e.buf[:e.total])
	h := wire.IPv4(gb[e.l2n:])
	h.SetTotalLength(uint16(e.hl + e.total))
	h.SetFlagsFragment(h.FlagsFragment() & wire.IPv4FlagDF)
	h.UpdateChecksum()
	t.release(e)
	w.extra[ExtraReasmDone]++
	// The XDP program sends every later fragment to our RLOC here, since it
	// cannot see their UDP port. A reassembled datagram that is not LISP
	// data (a fragmented Map-Register or Map-Reply to UDP 4342) belongs to
	// the kernel's sockets: hand it over whole.
	if udp := gb[e.l2n+e.hl:]; len(udp) >= wire.UDPLen && wire.UDP(udp).DstPort() != wire.DataPort {
		if w.cfg.ToKernel != nil && w.cfg.ToKernel(gb[e.l2n:n]) {
			w.c.Inc(CounterToKernel)
			w.free(&g)
			return
		}
	}
	w.fromCore(slot, &g)
}
