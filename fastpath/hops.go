package fastpath

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// hopSlots is the number of entries of a worker's next-hop memo of RLOCs
// (a power of two): an entry per RLOC template in use, thousands for a
// PITR or an ITR that sends to many sites (BenchmarkWorker/encap-64B-4096rlocs,
// encap-64B-16krlocs: with 4096 entries, 16384 RLOCs in use took three
// times the instructions a packet). At 256 bytes an entry, it takes 4 MiB
// a worker; only the first two lines of the entries of RLOCs in use are
// read (TestNextHopLayout). The flow memo names an entry by a 16-bit
// index.
const (
	hopBits  = 14
	hopSlots = 1 << hopBits
)

// delBits sizes a worker's next-hop memo of deliveries (delSlots entries):
// an entry per site host the ETR delivers to, so a site with thousands of
// active hosts keeps them resolved (BenchmarkWorker/decap-100B-4096hosts).
// Twice the hosts the memo must hold: delSlot4 gives any 4096 consecutive
// addresses distinct slots among 8192 (TestDelSlotsSpread), where among
// 4096 a fifth of them shared one. At 256 bytes an entry, it takes 2 MiB
// a worker; only the first line of an active host's entry is read a
// packet (TestNextHopLayout).
const (
	delBits  = 13
	delSlots = 1 << delBits
)

// nextHop is what a worker remembers about sending to one destination, an
// RLOC with its outer-header template or an inner destination delivered on
// a site: the next hop a next-hop snapshot gave for it and, when that next
// hop is resolved, the whole front of the packet to send, the Ethernet
// header followed by the template, ready to be copied.
type nextHop struct {
	// The fields are laid out by the cache lines the per-packet loops read
	// (TestNextHopLayout): the memos are page-aligned arrays of 256-byte
	// entries, so an entry's lines are its own. deliver4 reads snap, dkey
	// and the Ethernet header at the front of hdr: line 0 alone.
	// encapLoop reads snap, hdr's first 50 bytes, and fast4 to out: lines
	// 0 and 1. The rest is read when an entry is filled or a packet takes
	// a slower path.
	snap *nexthop.Snapshot // the snapshot adj comes from; nil: empty, or unused since the last note (held)
	// dkey is key4 | out<<33 when that delivery's next hop is resolved
	// on our port out with an Ethernet header (hlen; dkey6 for an IPv6
	// destination), 0 otherwise: what
	// deliver4 compares, one compare for five. Its bits 48-63 hold the
	// worker's decap offload tag (Worker.doet) once the delivery was
	// offered to the kernel in that epoch (decapOffer): until then
	// deliver4, whose siteMemo.dkey holds the current tag, leaves the
	// flow's packets to deliverAt, which offers it. These are the offers
	// of packets that come over IPv4; doff6 is the tag of those over IPv6
	// (0: none), which deliver4 never takes: the kernel holds an entry per
	// outer version.
	dkey uint64
	hdr  [wire.EthernetLen + wire.OuterIPv6Len]byte
	// For an IPv4 template that encapLoop's patch can finish (fast4): the LISP
	// header asks for a nonce (N), and csBase, the part of the outer
	// header checksum update (RFC 1624 eqn. 3) that depends on the
	// template alone. The LSBs are already in hdr (the worker's LSBs
	// never change).
	fast4  bool
	nonce  bool
	ser    uint32 // changes (never 0 again) each time the entry is filled: what the flow memo's slots check
	csBase uint32
	// maxInner is the longest inner packet encapFast may send through
	// this entry: the path MTU less the template when the next hop is
	// resolved on one of our ports and the template an outer one (at
	// least an IPv4 template long), at most what an outer IPv4 total
	// length holds; 0 otherwise (encapFast leaves every packet to encap).
	// One compare per packet instead of the four it stands for.
	maxInner int
	out      int // egress port slot; -1 unless st is AdjResolved and the port ours
	st       nexthop.AdjStatus
	fast6    bool // an IPv6 template encapLoop's patch finishes (with nonce)
	doff6    uint16
	// key4 is 1<<32 | the address for a delivery to an IPv4 destination
	// (tpl nil), 0 otherwise: what deliver compares.
	key4 uint64
	mtu  int // path MTU (pathMTU)
	hlen int // Ethernet header + template bytes in hdr (st AdjResolved)
	dst  netip.Addr
	tpl  []byte            // the template (never written: cache.RLOC.Template); nil for a delivery
	held *nexthop.Snapshot // snap, while noteUsed set it nil: resume makes it snap again
	adj  nexthop.Adjacency
	_    [nextHopPad]byte
}

// nextHopPad pads a nextHop to 256 bytes, a whole number of cache lines,
// so that every entry of a memo starts a line (TestNextHopLayout).
const nextHopPad = 8

// dkey6 marks the nextHop.dkey of a delivery to an IPv6 destination:
// out<<33 | dkey6, with the offload tag in bits 48-63 as for IPv4, and bit
// 32 clear, so that deliver4 (whose siteMemo.dkey has it set) never takes
// it for one of its own.
const dkey6 = 1 << 47

// hopMemo is a worker's direct-mapped memo of nextHops. An entry is used
// only while the next-hop table still publishes the snapshot it was filled
// from: any change of routes or neighbours (a new snapshot) makes the next
// packet resolve again, so a MAC address the table no longer gives is never
// written.
type hopMemo [hopSlots]nextHop

// delMemo is hopMemo for deliveries (a nextHop without a template: the
// inner destination on a site), apart from the RLOCs' entries so that a
// site's many hosts never evict an RLOC's.
type delMemo [delSlots]nextHop

// hop returns the memo entry for sending to dst through RLOC r, with its
// outer-header template (nil for a delivery: the Ethernet header alone, of
// dst's family), resolved in the batch's snapshot w.snap. A template is
// the same one only as the same slice of the map-cache's memory, which
// never changes.
func (w *Worker) hop(dst netip.Addr, r *cache.RLOC) *nextHop {
	var tpl []byte
	var h *nextHop
	if r != nil {
		tpl = r.Template
		h = &w.hops[hopIndexOf(r)]
	} else {
		h = w.delWay(dst)
	}
	tp := unsafe.SliceData(tpl)
	same := h.dst == dst && unsafe.SliceData(h.tpl) == tp && len(h.tpl) == len(tpl)
	if !same || h.snap != w.snap || h.snap == nil {
		if !same || !w.resume(h) {
			w.fillHop(h, dst, tpl)
		}
	}
	return h
}

// resume makes h, which the caller matched to the packet's destination,
// the batch snapshot's entry again without filling it, and reports whether
// it did: when only the last note of used next hops left it (resumeHeld),
// or when it can be carried over from the snapshot before (carry).
func (w *Worker) resume(h *nextHop) bool {
	return w.resumeHeld(h) || w.carry(h)
}

// resumeHeld is resume when only the last note of used next hops
// (noteUsed) left h, and reports whether it did: the entry was filled in
// the batch's snapshot and holds what filling it again would, its serial
// and offload tags included, so the flow memo's slots through it stay
// good. The packet's use is then the entry's first since the note.
// encapLoop calls it alone: a call in that loop, even on a path rarely
// taken, costs every packet (see encapLoop); what it cannot resume it
// returns to encapRun, which carries (loopCarry).
func (w *Worker) resumeHeld(h *nextHop) bool {
	if h.snap != nil || h.held == nil || h.held != w.snap {
		return false
	}
	h.snap, h.held = h.held, nil
	return true
}

// carry makes h, a resolved entry filled (or carried) in the snapshot
// stored just before the batch's, the batch snapshot's entry, when that
// resolves h's destination as the one before did, and reports whether it
// did. The entry then holds what filling it again would: everything
// fillHop writes follows from the destination, the template and the
// adjacency. Its serial stays, and so do the flow memo's slots through it,
// so that a routing daemon's churn of routes no packet goes by costs the
// worker one lookup per next hop in use, not a refill of every next hop
// and flow (BenchmarkWorker/encap-64B-churn). Its offload tags stay too:
// the kernel offload kept what it put through this next hop, having
// compared the same two snapshots (Offload.NextHopsChanged), or started an
// epoch, which the tags then miss, and an offer it dropped as stale clears
// its own tag (offloadFlush). A snapshot that says what it moved and lost
// (nexthop.Snapshot.Moved: the prefixes of a few routes changed, the
// neighbour entries gone) needs no lookup for a destination outside those
// prefixes (MayMove), and carries none whose link-layer destination it
// lost (LostVia). An entry older than the snapshot before, or not
// resolved, is filled again.
func (w *Worker) carry(h *nextHop) bool {
	s, from := w.snap, h.snap
	if from == nil {
		from = h.held
	}
	if s == nil || from == nil || h.st != nexthop.AdjResolved || from.Seq()+1 != s.Seq() {
		return false
	}
	if s.LostVia(nexthop.LinkDest{IfIndex: h.adj.IfIndex, MAC: h.adj.DstMAC}) {
		return false
	}
	if s.MayMove(h.dst) {
		if adj, st := s.Resolve(h.dst); st != h.st || adj != h.adj {
			return false
		}
	}
	h.snap, h.held = s, nil
	w.carried++
	return true
}

// fillHop resolves dst in w.snap (nil before the first snapshot:
// AdjNoRoute) into h.
func (w *Worker) fillHop(h *nextHop, dst netip.Addr, tpl []byte) {
	s := w.snap
	h.dst, h.tpl, h.snap, h.held = dst, tpl, s, nil
	if w.hopSer++; w.hopSer == 0 {
		w.hopSer = 1
	}
	h.ser = w.hopSer
	h.key4, h.dkey, h.doff6 = 0, 0, 0
	if tpl == nil && dst.Is4() {
		a := dst.As4()
		h.key4 = 1<<32 | uint64(binary.BigEndian.Uint32(a[:]))
	}
	h.adj, h.st = nexthop.Adjacency{}, nexthop.AdjNoRoute
	if s != nil {
		h.adj, h.st = s.Resolve(dst)
	}
	h.out = -1
	if h.st == nexthop.AdjResolved {
		h.out = w.portSlot(h.adj.Port)
	}
	h.mtu = w.pathMTU(h.out, &h.adj)
	h.hlen, h.maxInner = 0, 0
	h.fast4, h.fast6, h.nonce, h.csBase = false, false, false, 0
	if h.st != nexthop.AdjResolved || len(tpl) > wire.OuterIPv6Len {
		return
	}
	et := wire.EtherTypeIPv6
	switch {
	case len(tpl) > 0:
		et = outerEtherType(tpl)
	case dst.Is4():
		et = wire.EtherTypeIPv4
	}
	putEthernet(h.hdr[:], &h.adj, et)
	h.hlen = wire.EthernetLen + copy(h.hdr[wire.EthernetLen:], tpl)
	if h.out >= 0 && tpl == nil { // a delivery: hlen is EthernetLen
		h.dkey = h.key4 | uint64(h.out)<<33
		if h.key4 == 0 {
			h.dkey |= dkey6 // an IPv6 destination
		}
	}
	w.preparePatch(h)
	if h.out >= 0 && len(tpl) >= wire.OuterIPv4Len {
		h.maxInner = max(min(h.mtu, 0xffff)-len(tpl), 0)
	}
}

// preparePatch sets h.fast4 (and what encapLoop's patch needs) for a
// resolved memo entry, whose flags fillHop cleared, when its template is
// an IPv4 one that patchIPv4Outer and patchUDPLISP4 finish exactly as
// wire.PatchOuterIPv4 does: a 20-byte header, a zero UDP checksum (none
// to compute) and the LISP header of BuildTemplate; or h.fast6 for an
// IPv6 one that patchIPv6Outer and patchUDPLISP finish as
// wire.PatchOuterIPv6 does (offloadable6:
// no extension header, a zero UDP checksum). The worker's LSBs are
// written into the entry's copy of the LISP header once here, as
// wire.PatchOuterIPv4 (IPv6) would write them into every packet.
func (w *Worker) preparePatch(h *nextHop) {
	if offloadable6(h) {
		h.fast6, h.nonce = true, w.lsbsInto(h.hdr[frontV6-wire.HeaderLen:frontV6])
		return
	}
	if h.hlen != frontV4 {
		return
	}
	ob := h.hdr[wire.EthernetLen:frontV4]
	if ob[0] != 0x45 || ob[9] != wire.ProtoUDP || binary.BigEndian.Uint16(ob[wire.IPv4MinLen+6:]) != 0 {
		return
	}
	h.nonce = w.lsbsInto(ob[wire.IPv4MinLen+wire.UDPLen:])
	be := binary.BigEndian
	h.csBase = uint32(^be.Uint16(ob[10:])) + uint32(^be.Uint16(ob[0:])) + uint32(^be.Uint16(ob[2:])) +
		uint32(^be.Uint16(ob[4:])) + uint32(^be.Uint16(ob[8:]))
	h.fast4 = true
}

// lsbsInto writes the worker's LSBs into LISP header lh when its L flag
// asks for them, and reports whether its N flag asks for a nonce.
func (w *Worker) lsbsInto(lh wire.Header) bool {
	if lh.Flags()&wire.FlagL != 0 {
		lh.SetLSBs(w.lsbs)
	}
	return lh.Flags()&wire.FlagN != 0
}

// hopIndexOf is the hopMemo slot of RLOC r: its template's number in the
// map-cache (cache.RLOC.TemplateSlot), so the RLOCs of up to hopSlots
// installed templates each have a slot of their own
// (TestRLOCHopsOwnSlots). The entry itself is matched by the template.
func hopIndexOf(r *cache.RLOC) uint32 {
	return r.TemplateSlot() & (hopSlots - 1)
}

// delIndex returns the two delMemo slots of a delivery to dst: the first,
// where its entry is looked for first, and the second (delWay).
func delIndex(dst netip.Addr) (uint32, uint32) {
	if dst.Is4() {
		return delIndex4(dst)
	}
	a := dst.As16()
	x := delKey6(binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:]))
	return uint32(delSlot6(x)), uint32(delAlt6(x))
}

// delKey6 mixes the halves of an IPv6 destination, read little endian (hi
// and lo), into the number its delivery slots come from: delSlot6 and
// delAlt6, delSlot4 and delAlt4's IPv6 kin. deliver6 reads the halves from
// the frame and computes the second slot only when the first fails.
func delKey6(hi, lo uint64) uint64 { return lo ^ hi*0x9E3779B97F4A7C15 }

// delSlot6 is the first delivery slot of IPv6 delivery key x (delKey6).
func delSlot6(x uint64) uint64 { return (x * 0x9E3779B97F4A7C15) >> (64 - delBits) }

// delAlt6 is the second delivery slot of IPv6 delivery key x.
func delAlt6(x uint64) uint64 { return (x * delAltMul) >> (64 - delBits) }

// delIndex4 is delIndex of an IPv4 destination.
func delIndex4(dst netip.Addr) (uint32, uint32) {
	// As4, not As16: a 16-byte array built by two 8-byte stores and read
	// back costs a store-forwarding stall (9 ns per packet here).
	a := dst.As4()
	k := binary.BigEndian.Uint32(a[:])
	return delSlot4(k), delAlt4(k)
}

// delSlot4 is the first delivery slot of the IPv4 destination whose bytes
// are k: the address as a number, hashed by multiplication (Fibonacci
// hashing), so a site's consecutive addresses take distinct slots
// (TestDelSlotsSpread). Its weak case is hosts at the same offsets of
// subnets 4096 addresses apart (the first 256 of sixteen /20s: nine in ten
// share a slot), since 4096 is close to a Fibonacci number (4181): the
// second slot (delAlt4), by another multiplier, takes those.
func delSlot4(k uint32) uint32 {
	return uint32((uint64(k) * 0x9E3779B97F4A7C15) >> (64 - delBits))
}

// delAlt4 is the second delivery slot of the IPv4 destination whose bytes
// are k.
func delAlt4(k uint32) uint32 {
	return uint32((uint64(k) * delAltMul) >> (64 - delBits))
}

// delAltMul is the multiplier of the delivery memo's second slots: an odd
// constant unrelated to the golden ratio (MurmurHash3's 64-bit finaliser's
// first), so the addresses that share a first slot seldom share a second.
const delAltMul = 0xff51afd7ed558ccd

// delWay is the entry of the delivery memo for a delivery to dst: of its
// two slots (delIndex), the one that holds dst, else the one to fill
// (takeSecond). With one slot a destination, hosts that shared it evicted
// each other at every packet: a third of 4096 hosts spread at random over
// a /16, and nine in ten of the first 256 hosts of sixteen /20s. With two,
// about one in fifteen of these is filled again
// (TestDeliveryHostsShareSlots). Packets to addresses of the site that no
// host answers no longer evict a host in use either while their entries
// can take each other's place (TestDelWay).
func (w *Worker) delWay(dst netip.Addr) *nextHop {
	a, b := delIndex(dst)
	h := &w.dels[a&(delSlots-1)]
	if h.dst != dst {
		if o := &w.dels[b&(delSlots-1)]; o.dst == dst || takeSecond(h, o) {
			return o
		}
	}
	return h
}

// takeSecond reports whether a destination that neither of its delivery
// slots holds is to fill its second, o, rather than its first, h: when h
// is in use and o idle.
func takeSecond(h, o *nextHop) bool { return !h.idle() && o.idle() }

// idle reports whether h is an entry of the delivery memo that another
// destination may take before one in use: empty, set aside by the last
// note of used next hops and without a packet since (noteUsed: snap nil),
// or not resolved on one of the worker's ports (a neighbour that does not
// answer, or not there: such entries are never set aside).
func (h *nextHop) idle() bool { return h.snap == nil || h.out < 0 }

// del4 is the entry of the delivery memo for the IPv4 destination whose
// bytes are k, filled for the batch's snapshot: w.hop(dst, nil), delWay
// matching by key4, without the address built from k when the entry holds
// it already.
func (w *Worker) del4(k uint32) *nextHop {
	key := 1<<32 | uint64(k)
	h := &w.dels[delSlot4(k)]
	if h.key4 != key {
		if o := &w.dels[delAlt4(k)]; o.key4 == key || takeSecond(h, o) {
			h = o
		}
	}
	if h.key4 != key || h.snap != w.snap {
		w.fillDeliver4(h, k)
	}
	return h
}

// fillDeliver4 is fillHop for a delivery to the IPv4 destination whose
// bytes are k.
func (w *Worker) fillDeliver4(h *nextHop, k uint32) {
	if h.key4 == 1<<32|uint64(k) && w.resume(h) {
		return
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], k)
	w.fillHop(h, netip.AddrFrom4(a), nil)
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

// encapFast is encap for the common case, without the general path's
// calls: an IPv4 or IPv6 packet from a site, or one to re-encapsulate
// (RTR) under a Not-ECT outer header, whose mapping selected RLOC pk.r
// (lookup), whose next hop is resolved on one of our ports, with TTL (hop
// limit) left and fitting the path MTU. It returns the port slot to send the encapsulated frame on
// (the caller sends it: sendAt), encapDropped when it dropped the frame,
// or encapNo, having changed nothing, for any other packet, which forward
// then handles. Its output is the general path's (TestBatchMatchesGeneral).
func (w *Worker) encapFast(pk *pktInfo, f *ring.Frame) int {
	r := pk.r
	if r == nil {
		return encapNo
	}
	tpl := r.Template
	// w.hop, written out.
	tp := unsafe.SliceData(tpl)
	h := &w.hops[hopIndexOf(r)]
	// The template alone identifies the RLOC (h.dst need not be compared):
	// a template is built for one RLOC, holds its address, and cannot be
	// reused for another while h.tpl refers to it. An entry filled without
	// a snapshot (w.snap nil) has maxInner 0, as filling it again would.
	if unsafe.SliceData(h.tpl) != tp || len(h.tpl) != len(tpl) || h.snap != w.snap {
		return w.encapFastFill(pk, f, h)
	}
	return w.encapVia(pk, f, h)
}

// encapVia is encapFast through next-hop memo entry h, filled for the
// RLOC the packet goes to in the batch's snapshot: what is left of
// encapFast once the RLOC and its entry are known, from the mapping
// (encapFast) or from the flow memo (the batch loops). It is
// encapRun for the one packet.
func (w *Worker) encapVia(pk *pktInfo, f *ring.Frame, h *nextHop) int {
	_, out := w.encapRun(unsafe.Slice(pk, 1), unsafe.Slice(f, 1), 0, h, runOne)
	return out
}

// How encapRun finds each packet's next-hop memo entry.
const (
	runFlow = iota // its flow memo hit (pk.fset): flowRun
	runHop         // the flow memo hit lookupStage found (pk.hop, still holding serial pk.hser): hopRun
	runOne         // h1, for the first packet alone: encapVia
)

// encapRun encapsulates batch packets. With runFlow (flowRun) or runHop
// (hopRun), from index j on, for as long as each packet is a flow memo hit
// still good that it takes, or a packet already done (dropped while
// parsing), it sends each (counted as a flow memo hit) and returns the
// index of the first packet it left and encapNo. With runOne it takes packet j alone
// through h1 and sends nothing: it returns j+1 and the port slot to send
// on (or encapDropped), or j and encapNo having changed nothing. encapLoop
// does the work without a call; encapRun makes the calls it stops for, and
// goes on.
func (w *Worker) encapRun(pks []pktInfo, fs []ring.Frame, j int, h1 *nextHop, mode int) (int, int) {
	hj, one := h1, mode == runOne
	for {
		k, out, why, h := w.encapLoop(pks, fs, j, hj, mode)
		hj = nil
		switch why {
		case loopSend: // one is false
			w.sendAt(k, out, &fs[k])
			j = k + 1
			continue
		case loopLater:
			pk := &pks[k]
			if !pk.v4 { // flow6Hit moves the flow to its set's front, where encapLoop takes it
				if w.memo.flow6Hit(pk) == nil {
					return k, encapNo
				}
				j = k
				continue
			}
			x := flowLater(w.memo.flowAt(pk.fset), pk.mkey, pk.hash)
			if x == nil {
				return k, encapNo
			}
			if hj = &w.hops[x.hop&(hopSlots-1)]; hj.ser != x.ser || hj.snap != w.snap && !w.resume(hj) {
				return k, encapNo // lookupStage finds the same slot, forwardAt looks the packet up
			}
			j = k
			continue
		case loopOffer:
			pk := &pks[k]
			w.offloadOffer(pk, &w.memo.flowAt(pk.fset)[0], h)
			hj, j = h, k
			continue
		case loopCarry:
			if !w.carry(h) {
				return k, encapNo // lookupStage finds the same slot, forwardAt looks the packet up
			}
			j = k // current now: the packet's flow memo hit again
			continue
		case loopAny:
			out = w.encapFastAny(&pks[k], &fs[k], h)
			if out == encapNo {
				return k, encapNo
			}
			if one {
				return k + 1, out
			}
			w.memo.flowHits++
			if out >= 0 && !w.ip.take(k, out) {
				w.sendAt(k, out, &fs[k])
			}
			j = k + 1
			continue
		}
		return k, out
	}
}

// Why encapLoop stopped at a packet.
const (
	loopEnd   = iota // the run ended: the packet is left (or, one, taken)
	loopSend         // the packet is encapsulated for port out: sendAt sends it
	loopLater        // the packet's flow memo hit is not in the set's first two ways: flowLater (flow6Hit for an IPv6 flow)
	loopAny          // the packet goes through h, whose template encapLoop's patches do not finish: encapFastAny
	loopOffer        // the packet's flow memo hit (way 1, through h) is not offered to the kernel in this epoch: offloadOffer
	loopCarry        // the packet's flow memo hit (through h) is of the snapshot before the batch's: carry
)

// encapLoop is encapRun's loop, the one place that holds encapFast's work
// once the next-hop memo entry is known, without a call: a call in the
// loop, even on a path rarely taken, made it spill and reload its
// registers on every packet. It takes the packets from j on, packet j
// through hj when hj is not nil, each later one (or each, hj nil) through
// its flow memo hit, and returns at the first packet it cannot finish
// alone (loopSend, loopLater, loopAny, loopOffer, loopCarry: the packet's
// index, the port, h) or at the end of the run (loopEnd: the index of the
// first packet left, and encapNo). With runOne it takes packet j alone and sends nothing: loopEnd
// with j+1 and the port, or j and encapNo.
func (w *Worker) encapLoop(pks []pktInfo, fs []ring.Frame, j int, hj *nextHop, mode int) (int, int, int, *nextHop) {
	m, snap, oet := w.memo, w.snap, w.oet
	for ; j < len(pks); j++ {
		pk := &pks[j]
		h := hj
		hj = nil
		if h == nil {
			if pk.act != actForward {
				if pk.act == actDone {
					continue
				}
				break
			}
			if mode == runHop {
				if h = pk.hop; h == nil || h.ser != pk.hser {
					break
				}
				if h.snap != snap && !w.resumeHeld(h) {
					return j, encapNo, loopCarry, h
				}
			} else if pk.fset == 0 {
				// An IPv6 flow: flow6Hit written out, its ways compared in
				// turn. A miss or a hit of an offload epoch gone goes to
				// lookupStage, which finds the same (and probes).
				if pk.v4 || pk.fset6 == 0 {
					break
				}
				s, bkt, tag := m.flow6At(pk.fset6), cache.SelectBucket(pk.hash), m.tag6(pk.iid)
				x := &s[0]
				if x.hi != pk.mkey || x.lo != pk.mlo || x.tag != tag || x.bkt != bkt {
					if x = &s[1]; x.hi != pk.mkey || x.lo != pk.mlo || x.tag != tag || x.bkt != bkt {
						return j, encapNo, loopLater, nil // its buddy set: flow6Hit
					}
					s[0], s[1] = s[1], s[0]
					x = &s[0]
				}
				if x.off != oet {
					break
				}
				h = &w.hops[x.hop&(hopSlots-1)]
				if h.ser != x.ser {
					break // lookupStage finds the same slot, forwardAt looks the packet up
				}
				if h.snap != snap && !w.resumeHeld(h) {
					return j, encapNo, loopCarry, h // carry, then this packet again
				}
			} else {
				fl := m.flowAt(pk.fset)
				x, bkt := &fl[0], cache.SelectBucket(pk.hash) // as lookupStage checks it
				if x.key != pk.mkey || x.bkt != bkt {
					// flowLater for the second way, written out: moving it
					// to the front is a swap.
					if x = &fl[1]; x.key != pk.mkey || x.bkt != bkt {
						return j, encapNo, loopLater, nil
					}
					fl[0], fl[1] = fl[1], fl[0]
					x = &fl[0]
				}
				h = &w.hops[x.hop&(hopSlots-1)]
				if h.ser != x.ser {
					break // lookupStage finds the same slot, forwardAt looks the packet up
				}
				if h.snap != snap && !w.resumeHeld(h) {
					return j, encapNo, loopCarry, h // carry, then this packet again
				}
				if x.off != oet {
					return j, encapNo, loopOffer, h // offloadOffer, then this packet through h
				}
			}
		}
		if pk.v4 {
			if pk.rtr && pk.outerTOS&3 != wire.ECNNotECT {
				break
			}
			off, n := pk.innerOff, pk.innerLen
			if n > h.maxInner || n < wire.IPv4MinLen { // maxInner 0: not resolved, not our port, no template
				break
			}
			// The parse stages checked that the inner packet ends within the
			// frame's bytes, so the front moves in one step (w.front) before
			// the last checks: Reframe fails, changing nothing, only for want
			// of headroom, and a TTL check that fails moves it back.
			f := &fs[j]
			n0 := f.Len()
			if h.fast4 {
				b := f.Reframe(off-frontV4, frontV4+n)
				if len(b) < frontV4+wire.IPv4MinLen { // nil
					break
				}
				p := (*[frontV4 + wire.IPv4MinLen]byte)(b)
				inner := p[frontV4:]
				ttl := inner[8]
				if pk.rtr && pk.outerTTL < ttl { // decapRules: TTL = min(outer, inner), then the decrement
					if pk.outerTTL <= 1 {
						f.Reframe(frontV4-off, n0)
						break
					}
					// setTTL4 to outerTTL, then decTTL4: the same bytes in one
					// step (TestLowerTTL4TwoSteps).
					ttl = pk.outerTTL - 1
					lowerTTL4(inner, ttl)
				} else {
					if ttl <= 1 {
						f.Reframe(frontV4-off, n0)
						break
					}
					ttl--
					decTTL4(inner, ttl)
				}
				copyFrontV4((*[frontV4]byte)(p[:frontV4]), (*[frontV4]byte)(h.hdr[:frontV4]))
				// The patch in two inlined steps, the inner TOS and new TTL
				// taken from registers (a call in this loop spills its
				// registers).
				ob := (*[wire.OuterIPv4Len]byte)(p[wire.EthernetLen:])
				on := uint32(wire.OuterIPv4Len + n)
				id := w.ipid
				w.ipid++
				patchIPv4Outer(ob, h.csBase, inner[1], on, id, ttlUDP(ttl))
				patchUDPLISP4(ob, on, wire.SourcePort(pk.hash), h.nonce, w.nonce()) // a nonce drawn for every packet, as patchOuter does
			} else if h.fast6 {
				// The same under an IPv6 template (an IPv6 underlay's).
				b := f.Reframe(off-frontV6, frontV6+n)
				if len(b) < frontV6+wire.IPv4MinLen { // nil
					break
				}
				p := (*[frontV6 + wire.IPv4MinLen]byte)(b)
				inner := p[frontV6:]
				ttl := nextTTL4(pk, inner[8])
				if ttl == 0 {
					f.Reframe(frontV6-off, n0)
					break
				}
				lowerTTL4(inner, ttl)
				copyFrontV6((*[frontV6]byte)(p[:frontV6]), (*[frontV6]byte)(h.hdr[:frontV6]))
				pl := uint16(wire.UDPLen + wire.HeaderLen + n)
				ob := (*[wire.OuterIPv6Len]byte)(p[wire.EthernetLen:])
				patchIPv6Outer(ob, inner[1], ttl, pl, pk.hash)
				w.ipid++ // as patchOuter advances it for every packet
				patchUDPLISP((*[wire.UDPLen + wire.HeaderLen]byte)(ob[wire.IPv6Len:]), pl, wire.SourcePort(pk.hash), h.nonce, w.nonce())
			} else {
				return j, encapNo, loopAny, h
			}
		} else {
			// An inner IPv6 packet: its hop limit (nextHL), then the
			// template's patch with the traffic class for the outer TOS.
			// In the loop too (a call per packet cost about 75
			// instructions): a block of its own adds no instruction to
			// an IPv4 packet's way but alignment NOPs. The two outer
			// versions keep a block each, with their own constants: one
			// block for both, on a front length held in a register, cost
			// encap-84B-v6 10 instructions a packet.
			off, n := pk.innerOff, pk.innerLen
			if pk.rtr && pk.outerTOS&3 != wire.ECNNotECT || n > h.maxInner || n < wire.IPv6Len {
				break
			}
			f := &fs[j]
			n0 := f.Len()
			if h.fast4 {
				b := f.Reframe(off-frontV4, frontV4+n)
				if len(b) < frontV4+wire.IPv6Len { // nil
					break
				}
				p := (*[frontV4 + wire.IPv6Len]byte)(b)
				inner := p[frontV4:]
				hl := nextHL(pk, inner[7])
				if hl == 0 {
					f.Reframe(frontV4-off, n0)
					break
				}
				inner[7] = hl
				copyFrontV4((*[frontV4]byte)(p[:frontV4]), (*[frontV4]byte)(h.hdr[:frontV4]))
				ob := (*[wire.OuterIPv4Len]byte)(p[wire.EthernetLen:])
				on := uint32(wire.OuterIPv4Len + n)
				id := w.ipid
				w.ipid++
				patchIPv4Outer(ob, h.csBase, inner[0]<<4|inner[1]>>4, on, id, ttlUDP(hl))
				patchUDPLISP4(ob, on, wire.SourcePort(pk.hash), h.nonce, w.nonce())
			} else if h.fast6 {
				b := f.Reframe(off-frontV6, frontV6+n)
				if len(b) < frontV6+wire.IPv6Len { // nil
					break
				}
				p := (*[frontV6 + wire.IPv6Len]byte)(b)
				inner := p[frontV6:]
				hl := nextHL(pk, inner[7])
				if hl == 0 {
					f.Reframe(frontV6-off, n0)
					break
				}
				inner[7] = hl
				copyFrontV6((*[frontV6]byte)(p[:frontV6]), (*[frontV6]byte)(h.hdr[:frontV6]))
				pl := uint16(wire.UDPLen + wire.HeaderLen + n)
				ob := (*[wire.OuterIPv6Len]byte)(p[wire.EthernetLen:])
				patchIPv6Outer(ob, inner[0]<<4|inner[1]>>4, hl, pl, pk.hash)
				w.ipid++
				patchUDPLISP((*[wire.UDPLen + wire.HeaderLen]byte)(ob[wire.IPv6Len:]), pl, wire.SourcePort(pk.hash), h.nonce, w.nonce())
			} else {
				return j, encapNo, loopAny, h
			}
		}
		if pk.rtr {
			w.c.Inc(CounterReencap)
		} else {
			w.c.Inc(CounterEncap)
		}
		if mode == runOne {
			return j + 1, h.out, loopEnd, nil
		}
		// Counted as a flow memo hit; sent (sendAt, left to encapRun).
		m.flowHits++
		if out := h.out; !w.ip.take(j, out) {
			return j, out, loopSend, nil
		}
	}
	return j, encapNo, loopEnd, nil
}

// encapFastFill is encapFast after filling its memo entry h for pk.r: the
// call kept out of encapFast, so that nothing there is live across a call
// (its registers were spilled on every packet). Filled, h matches pk.r's
// template and the batch's snapshot, so encapFast does not come back.
func (w *Worker) encapFastFill(pk *pktInfo, f *ring.Frame, h *nextHop) int {
	if tpl := pk.r.Template; unsafe.SliceData(h.tpl) != unsafe.SliceData(tpl) || len(h.tpl) != len(tpl) || !w.resume(h) {
		w.fillHop(h, pk.r.Addr, tpl)
	}
	return w.encapFast(pk, f)
}

// patchIPv4Outer and patchUDPLISP4 are wire.PatchOuterIPv4 for the outer
// header ob just copied from h (fast4) in front of an inner packet: the
// same bytes (the checksum updated by the same sum, RFC 1624 eqn. 3, from
// h.csBase instead of the template's words), without the checks and
// calls; encapLoop runs them inline, the inner TOS (traffic class) and new
// TTL (hop limit) taken from registers.
//
// patchIPv4Outer is the first step: the outer IPv4 header's TOS,
// total length on, identification id, TTL and protocol word tp (the TTL
// times 256 plus UDP: ttlUDP) and checksum, updated from csBase
// (nextHop.csBase) by RFC 1624 eqn. 3.
func patchIPv4Outer(ob *[wire.OuterIPv4Len]byte, csBase uint32, tos uint8, on uint32, id uint16, tp uint32) {
	be := binary.BigEndian
	s := csBase + (0x4500 | uint32(tos)) + on + uint32(id) + tp
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	ob[1] = tos
	be.PutUint16(ob[2:], uint16(on))
	be.PutUint16(ob[4:], id)
	be.PutUint16(ob[8:], uint16(tp))
	be.PutUint16(ob[10:], ^uint16(s))
}

// ttlUDP is the IPv4 TTL and protocol word of an outer header with TTL
// ttl: UDP.
func ttlUDP(ttl uint8) uint32 { return uint32(ttl)<<8 | uint32(wire.ProtoUDP) }

// patchUDPLISP4 is patchIPv4Outer's second step: the UDP source port and length
// (on the outer IPv4 packet's length) and, when the LISP header asks for
// one (nonce), the nonce x.
func patchUDPLISP4(ob *[wire.OuterIPv4Len]byte, on uint32, sport uint16, nonce bool, x uint32) {
	const u = wire.IPv4MinLen
	be := binary.BigEndian
	be.PutUint16(ob[u:], sport)
	be.PutUint16(ob[u+4:], uint16(on-wire.IPv4MinLen))
	if nonce {
		be.PutUint32(ob[u+wire.UDPLen:], uint32(ob[u+wire.UDPLen])<<24|x)
	}
}

// patchUDPLISP is patchUDPLISP4 after patchIPv6Outer: the UDP and LISP
// headers t, the UDP length ul. patchUDPLISP4 written as a call of it made
// encapLoop one instruction longer.
func patchUDPLISP(t *[wire.UDPLen + wire.HeaderLen]byte, ul, sport uint16, nonce bool, x uint32) {
	be := binary.BigEndian
	be.PutUint16(t[0:], sport)
	be.PutUint16(t[4:], ul)
	if nonce {
		be.PutUint32(t[wire.UDPLen:], uint32(t[wire.UDPLen])<<24|x)
	}
}

// encapFastAny is encapFast through a resolved entry for a template
// encapLoop's patches do not finish (a UDP checksum to compute, an
// option): the general patch. Its callers leave a packet under an
// ECN-capable outer header (RTR) to the general path; it returns encapNo,
// having changed nothing, for a packet whose TTL or hop limit runs out.
func (w *Worker) encapFastAny(pk *pktInfo, f *ring.Frame, h *nextHop) int {
	off, n := pk.innerOff, pk.innerLen
	cur := f.Bytes()
	if off+n > len(cur) || h.hlen-off > f.Headroom() {
		return encapNo
	}
	inner := cur[off : off+n]
	if !pk.v4 {
		if n < wire.IPv6Len {
			return encapNo
		}
		hl := nextHL(pk, inner[7]) // prepareInner for IPv6
		if hl == 0 {
			return encapNo
		}
		inner[7] = hl
	} else {
		ttl := nextTTL4(pk, inner[8])
		if ttl == 0 {
			return encapNo
		}
		lowerTTL4(inner, ttl)
	}
	// w.front in one step: the checks above make it succeed (the packet
	// ends within its current bytes, and the front fits the headroom).
	b := f.Reframe(off-h.hlen, h.hlen+n)
	copy(b, h.hdr[:h.hlen])
	if !w.patchOuter(pk, f, b[wire.EthernetLen:]) {
		return encapDropped
	}
	return h.out
}

// patchIPv6Outer and patchUDPLISP are wire.PatchOuterIPv6 for an IPv6
// template (h.fast6): patchIPv6Outer writes the outer IPv6 header's
// traffic class tos and flow label (the flow hash's low 20 bits, RFC 6438
// §3), payload length pl and hop limit ttl; patchUDPLISP the UDP source
// port and length and the nonce. encapLoop advances the worker's IP
// identification between the two, as patchOuter advances it for every
// packet, so that the IPv4 packets after it get the same ones.
func patchIPv6Outer(ob *[wire.OuterIPv6Len]byte, tos, ttl uint8, pl uint16, hash uint32) {
	be := binary.BigEndian
	be.PutUint32(ob[0:], 6<<28|uint32(tos)<<20|hash&0xfffff)
	be.PutUint16(ob[4:], pl)
	ob[7] = ttl
}

// nextHL is nextTTL4 for the hop limit hl of an inner IPv6 packet of pk:
// under a Not-ECT outer header decapRules leaves the traffic class as it
// is and takes the smaller hop limit (wire.ApplyDecap), then the
// decrement; 0 when it runs out.
func nextHL(pk *pktInfo, hl uint8) uint8 {
	if pk.rtr {
		hl = min(hl, pk.outerTTL)
	}
	if hl <= 1 {
		return 0
	}
	return hl - 1
}

// nextTTL4 is the TTL an inner IPv4 packet of pk with TTL ttl leaves with:
// under a Not-ECT outer header decapRules takes the smaller of the outer
// and inner TTL (an RTR's packet), then the decrement; 0 when it runs
// out. lowerTTL4 writes it: setTTL4 to the outer TTL, then decTTL4, are
// the same bytes in one step (TestLowerTTL4TwoSteps).
func nextTTL4(pk *pktInfo, ttl uint8) uint8 {
	if pk.rtr && pk.outerTTL < ttl {
		ttl = pk.outerTTL
	}
	if ttl <= 1 {
		return 0
	}
	return ttl - 1
}

// encapFast's results other than a port slot.
const (
	encapNo      = -1 // not taken, nothing changed
	encapDropped = -2 // taken and dropped
)

// frontV4 is the length of the front of an IPv4-encapsulated packet:
// Ethernet header and IPv4 outer-header template.
const frontV4 = wire.EthernetLen + wire.OuterIPv4Len

// frontV6 is frontV4 for an IPv6 outer-header template.
const frontV6 = wire.EthernetLen + wire.OuterIPv6Len

// copyFrontV6 is copyFrontV4 for an IPv6 template (70 bytes): four
// 16-byte moves and an 8-byte one, the last overlapping.
func copyFrontV6(dst, src *[frontV6]byte) {
	*(*[16]byte)(dst[0:]) = *(*[16]byte)(src[0:])
	*(*[16]byte)(dst[16:]) = *(*[16]byte)(src[16:])
	*(*[16]byte)(dst[32:]) = *(*[16]byte)(src[32:])
	*(*[16]byte)(dst[48:]) = *(*[16]byte)(src[48:])
	*(*[8]byte)(dst[62:]) = *(*[8]byte)(src[62:])
}

// copyFrontV4 copies an Ethernet header and IPv4 template (50 bytes) in
// three 16-byte moves (one SSE load and store each) and an 8-byte one,
// the last overlapping. A [50]byte assignment, and any copy of 32 bytes
// or more in one assignment, compiles to a runtime.memmove call (2 % of
// an encap in a profile): the compiler cannot tell the two arrays apart.
// Seven 8-byte moves took six instructions more a packet, and
// binary.LittleEndian's Uint64 and PutUint64 left an inline mark, a
// one-byte NOP, in encapLoop for each of its inlined calls.
func copyFrontV4(dst, src *[frontV4]byte) {
	*(*[16]byte)(dst[0:]) = *(*[16]byte)(src[0:])
	*(*[16]byte)(dst[16:]) = *(*[16]byte)(src[16:])
	*(*[16]byte)(dst[32:]) = *(*[16]byte)(src[32:])
	*(*[8]byte)(dst[42:]) = *(*[8]byte)(src[42:])
}

// encapHop finishes the encapsulation of the packet in f (inner header
// prepared, fitting h.mtu) through a resolved memo entry: one copy of the
// Ethernet header and template in front of the inner packet, the
// per-packet fields patched, queued on port h.out.
func (w *Worker) encapHop(pk *pktInfo, f *ring.Frame, h *nextHop) {
	b := w.front(f, pk.innerOff, pk.innerLen, h.hlen)
	if b == nil {
		return
	}
	copy(b, h.hdr[:h.hlen])
	if w.patchOuter(pk, f, b[wire.EthernetLen:]) {
		w.send(h.out, f)
	}
}

// usedHops is the link-layer destinations of a worker's resolved next
// hops, as it last noted them (noteUsed), for UsedNextHops: the worker
// writes it under a lock it only tries, the slow path reads it under the
// lock. at indexes ds by a hash of the destination (open addressing, an
// index plus one; 0 empty), so that noting thousands of site hosts costs a
// probe each, not a scan of those noted before.
type usedHops struct {
	mu sync.Mutex
	ds [usedMax]nexthop.LinkDest
	at [usedAtLen]uint16
	n  int
	_  [64]byte // not on a line another worker's memory shares
}

// usedMax is how many destinations a note holds: one per memo entry.
// usedAtLen, a power of two, keeps usedHops.at at most two thirds full.
const (
	usedMax    = hopSlots + delSlots
	usedAtBits = 16
	usedAtLen  = 1 << usedAtBits
)

var _ [usedAtLen - usedMax*3/2]struct{} // usedAtLen >= 1.5 usedMax
var _ [1<<16 - 1 - usedMax]struct{}     // usedHops.at holds an index plus one in 16 bits
var _ [1<<16 - hopSlots]struct{}        // flowSlot.hop names an entry in 16 bits

// usedEvery is how often a worker notes its used next hops (noteUsed).
const usedEvery = int64(500 * time.Millisecond)

// noteUsed records the link-layer destination (egress interface, MAC) of
// every next-hop memo entry resolved on one of the worker's ports that a
// packet went through since the last note, for UsedNextHops, and sets
// each such entry aside (snap nil, held). The next packet through it makes
// it current again without filling it (resume): on the flow memo's path,
// which stays a hit, as on the paths that fill an entry. Its serial and
// offload tags stay, and so do the flow memo's slots through it. An entry
// no packet went through since is not noted: the kernel's neighbour entry
// of a host the fast path stopped sending to then ages as the kernel's own
// forwarding would leave it, where marking it used would keep the kernel
// probing the host. The cost is a few instructions for the first packet
// through each active next hop after a note. It runs every usedEvery of
// the worker's clock, and again at its next step when the slow path holds
// the lock; an entry that finds the record full stays current, to be noted
// next time.
func (w *Worker) noteUsed() {
	u := w.used
	if !u.mu.TryLock() {
		return
	}
	defer u.mu.Unlock()
	w.usedAt = w.now + usedEvery
	if u.noteFrom(w.hops[:]) {
		u.noteFrom(w.dels[:])
	}
}

// noteFrom is noteUsed of the entries hs, and reports false when the
// record filled up.
func (u *usedHops) noteFrom(hs []nextHop) bool {
	for i := range hs {
		h := &hs[i]
		if h.snap == nil || h.out < 0 || h.hlen < wire.EthernetLen {
			continue
		}
		if !u.add(nexthop.LinkDest{IfIndex: h.adj.IfIndex, MAC: h.adj.DstMAC}) {
			return false // full: the entries left current are noted next time
		}
		h.snap, h.held = nil, h.snap
	}
	return true
}

// add records d unless it is there already, and reports false when the
// record is full (the slow path has not read it for a while).
func (u *usedHops) add(d nexthop.LinkDest) bool {
	x := uint64(uint32(d.IfIndex))<<48 | uint64(d.MAC[0])<<40 | uint64(d.MAC[1])<<32 | uint64(d.MAC[2])<<24 |
		uint64(d.MAC[3])<<16 | uint64(d.MAC[4])<<8 | uint64(d.MAC[5])
	const mask = len(u.at) - 1
	for i := int((x * 0x9E3779B97F4A7C15) >> (64 - usedAtBits)); ; i++ {
		j := u.at[i&mask]
		if j == 0 {
			if u.n == len(u.ds) {
				return false
			}
			u.ds[u.n] = d
			u.n++
			u.at[i&mask] = uint16(u.n)
			return true
		}
		if u.ds[j-1] == d {
			return true
		}
	}
}

// UsedNextHops appends to ds the link-layer destinations (egress
// interface, destination MAC) of the resolved next hops the worker noted
// since the last call, each once, and forgets them: those it sent through
// in that time (noteUsed, every half second of its steps; an idle worker
// notes none). Give them, with the kernel offload's (Offload.OnUsed), to
// nexthop.Watcher.MarkUsed, so that the kernel's neighbour table sees the
// use the worker's packets, which pass none of it, made of them. Safe for
// use by one goroutine while the worker runs.
func (w *Worker) UsedNextHops(ds []nexthop.LinkDest) []nexthop.LinkDest {
	u := w.used
	u.mu.Lock()
	defer u.mu.Unlock()
	ds = append(ds, u.ds[:u.n]...)
	u.n = 0
	clear(u.at[:])
	return ds
}
