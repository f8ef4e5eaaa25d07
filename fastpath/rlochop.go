package fastpath

import (
	"encoding/binary"
	"unsafe"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// hopSlots is the number of entries of a worker's RLOC next-hop memo (a
// power of two).
const hopSlots = 256

// rlocHop is what a worker remembers about sending to one RLOC: the
// underlay next hop a next-hop snapshot gave for it and, when that next hop
// is resolved, the whole front of an encapsulated packet, the Ethernet
// header followed by the RLOC's outer-header template, ready to be copied.
type rlocHop struct {
	r    *cache.RLOC       // the RLOC (its Template never changes); nil: empty
	snap *nexthop.Snapshot // the snapshot adj comes from
	st   nexthop.AdjStatus
	out  int // egress port slot; -1 unless st is AdjResolved and the port ours
	mtu  int // path MTU (pathMTU)
	hlen int // Ethernet header + template bytes in hdr (st AdjResolved)
	adj  nexthop.Adjacency
	hdr  [wire.EthernetLen + wire.OuterIPv6Len]byte
}

// rlocHops is a worker's direct-mapped memo from RLOC to rlocHop. An entry
// is used only while the next-hop table still publishes the snapshot it was
// filled from: any change of routes or neighbours (a new snapshot) makes
// the next packet resolve again, so a MAC address the table no longer
// gives is never written.
type rlocHops [hopSlots]rlocHop

// hop returns the memo entry of RLOC r, resolved in the batch's snapshot
// w.snap. r.Template is at least an IPv4 outer header.
func (w *Worker) hop(r *cache.RLOC) *rlocHop {
	h := &w.hops[hopIndex(r)]
	if h.r != r || h.snap != w.snap || h.snap == nil {
		w.fillHop(h, r)
	}
	return h
}

// fillHop resolves RLOC r in w.snap (nil before the first snapshot:
// AdjNoRoute) into h.
func (w *Worker) fillHop(h *rlocHop, r *cache.RLOC) {
	s := w.snap
	h.r, h.snap = r, s
	h.adj, h.st = nexthop.Adjacency{}, nexthop.AdjNoRoute
	if s != nil {
		h.adj, h.st = s.Resolve(r.Addr)
	}
	h.out = -1
	if h.st == nexthop.AdjResolved {
		h.out = w.portSlot(h.adj.Port)
	}
	h.mtu = w.pathMTU(h.out, &h.adj)
	h.hlen = 0
	if h.st == nexthop.AdjResolved && len(r.Template) <= wire.OuterIPv6Len {
		putEthernet(h.hdr[:], &h.adj, outerEtherType(r.Template))
		h.hlen = wire.EthernetLen + copy(h.hdr[wire.EthernetLen:], r.Template)
	}
}

// hopIndex spreads RLOC pointers over the memo's slots (the address only
// serves as a number; Go's heap objects do not move).
func hopIndex(r *cache.RLOC) uint32 {
	return uint32((uint64(uintptr(unsafe.Pointer(r))) * 0x9E3779B97F4A7C15) >> 56)
}

// putEthernet writes the Ethernet header of adj with EtherType et at the
// start of b, by fixed-size stores (wire.Ethernet's setters copy through
// runtime.memmove, 10% of an encap in BenchmarkWorker once).
func putEthernet(b []byte, adj *nexthop.Adjacency, et uint16) {
	_ = b[wire.EthernetLen-1]
	*(*[6]byte)(b[0:6]) = adj.DstMAC
	*(*[6]byte)(b[6:12]) = adj.SrcMAC
	binary.BigEndian.PutUint16(b[12:14], et)
}

// encapHop finishes the encapsulation of the packet in f (inner header
// prepared, fitting h.mtu) through a resolved memo entry: one copy of the
// Ethernet header and template in front of the inner packet, the
// per-packet fields patched, queued on port h.out.
func (w *Worker) encapHop(pk *pktInfo, f *ring.Frame, h *rlocHop) {
	b := w.front(f, pk.innerOff, pk.innerLen, h.hlen)
	if b == nil {
		return
	}
	const v4 = wire.EthernetLen + wire.OuterIPv4Len
	if h.hlen == v4 && len(b) >= v4 {
		*(*[v4]byte)(b) = *(*[v4]byte)(h.hdr[:v4]) // fixed-size moves, no memmove call
	} else {
		copy(b, h.hdr[:h.hlen])
	}
	if w.patchOuter(pk, f, b[wire.EthernetLen:]) {
		w.send(h.out, f)
	}
}
