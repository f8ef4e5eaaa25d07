package fastpath

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// fromCore handles one frame received on a core port outside a batch (a
// held packet released, a datagram reassembled): ETR decapsulation, or RTR
// re-encapsulation for instance-IDs no site port serves.
func (w *Worker) fromCore(slot int, f *ring.Frame) {
	var pk pktInfo
	w.snap = w.cfg.NextHops.Load()
	w.parseCore(&pk, slot, f)
	if pk.act == actForward {
		lazyAddrs(&pk, f)
		w.lookup(&pk)
	}
	w.finishCore(&pk, f)
}

// fromCoreBatch handles the frames a core port received stage by stage, as
// fromSiteBatch does: parse (and decide) every frame, look up the packets
// to re-encapsulate, then deliver, forward or reassemble in arrival order.
// Packets to deliver before the first one that needs a later stage are
// delivered at once, while their bytes are at hand: a batch of plain ETR
// traffic goes through in one pass.
func (w *Worker) fromCoreBatch(slot int, fs []ring.Frame) {
	pks := w.pkts[:len(fs)]
	w.snap = w.cfg.NextHops.Load()
	w.beginBatch(fs)
	defer w.finishBatch()
	// The LISP flags that make coreInner report an observation.
	obsFlags := wire.FlagE | wire.FlagL
	if w.obs.nonces.Load() {
		obsFlags |= wire.FlagN
	}
	// Until a packet needs the later stages, packets are delivered (or
	// dropped) as they are parsed; first is that packet.
	first := len(fs)
	for j := range fs {
		pk := &pks[j]
		f := &fs[j]
		b := f.Bytes()
		le := core4(b, w.rloc4k, pk)
		// coreInner's common case: the instance-ID of the last packet,
		// one deliver4 takes (siteMemo.fast), and nothing to observe.
		if le > 0 {
			if w.lastSite.fast == 1<<32|uint64(pk.iid) && (*[core4Min]byte)(b)[core4Inner-wire.HeaderLen]&obsFlags == 0 &&
				w.deliver4(f, (*[core4Min]byte)(b), pk, j) {
				continue
			}
		} else if le < 0 && w.lastSite.fast == 1<<32|uint64(pk.iid) && b[core4Inner-wire.HeaderLen]&obsFlags == 0 && w.deliver6(f, b, pk, j) {
			continue // the same for an inner IPv6 packet
		}
		// w.parseCore, written out.
		pk.act, pk.fset, pk.lazyAddrs = actDone, 0, false
		if le != 0 {
			w.coreInner4(pk, f, b, slot, le, obsFlags)
		} else if w.coreNot4(pk, f, b, slot, j, obsFlags, true) {
			continue // delivered
		}
		if pk.act == actDeliver {
			w.deliverAt(pk, f, pk.site, j)
		} else if pk.act != actDone {
			first = j
			break
		}
	}
	if first == len(fs) {
		return
	}
	for j := first + 1; j < len(fs); j++ {
		pk := &pks[j]
		f := &fs[j]
		pk.act, pk.fset, pk.lazyAddrs = actDone, 0, false
		b := f.Bytes()
		if le := core4(b, w.rloc4k, pk); le != 0 {
			w.coreInner4(pk, f, b, slot, le, obsFlags)
		} else {
			w.coreNot4(pk, f, b, slot, j, obsFlags, false)
		}
	}
	// Packets before first were delivered or dropped in the loop above.
	k := w.flowRun(pks, fs, first)
	w.lookupStage(pks[k:], fs[k:])
	for j := k; j < len(pks); j++ {
		switch pk := &pks[j]; pk.act {
		case actDone:
		case actDeliver:
			w.deliverAt(pk, &fs[j], pk.site, j)
		case actForward:
			// As in fromSiteBatch: a run of flow memo hits, or forwardAt.
			if n := w.hopRun(pks, fs, j); n > j {
				j = n - 1
				continue
			}
			w.forwardAt(pk, fs, j)
		default:
			w.endInPlace()
			w.finishCore(pk, &fs[j])
		}
	}
}

// finishCore is the last stage of a core packet parsed by parseCore.
func (w *Worker) finishCore(pk *pktInfo, f *ring.Frame) {
	switch pk.act {
	case actDeliver:
		w.deliver(pk, f, pk.site)
	case actForward:
		w.forward(pk, f)
	case actReasm:
		w.reassemble(pk.slot, f, pk.outerOff)
	}
}

// parseCore validates a frame from core port slot, fills pk and sets
// pk.act to what the batch's last stage does with it (actDone when it was
// dropped). Observations, gleaning and underlay-group news are recorded
// here, in arrival order.
func (w *Worker) parseCore(pk *pktInfo, slot int, f *ring.Frame) {
	pk.act, pk.fset = actDone, 0
	b := f.Bytes()
	if h, ok := w.parseCoreFast(pk, slot, b); ok {
		w.coreInner(pk, f, b, h)
		return
	}
	w.parseCoreAny(pk, slot, f, b)
}

// core4Min is the shortest frame core4 takes: Ethernet, IPv4 and UDP
// headers, the LISP header and an inner IPv4 header.
const core4Min = wire.EthernetLen + wire.OuterIPv4Len + wire.IPv4MinLen

// core4Inner is where core4's inner IPv4 header starts.
const core4Inner = wire.EthernetLen + wire.OuterIPv4Len

// core4 is parseCore's common case without the general parser: an untagged
// IPv4 packet without options, not a fragment, with a valid header
// checksum, to our RLOC (rloc4k: not an underlay group), UDP to the LISP
// data port (RFC 9300 §5.3), with a LISP header that is valid, carrying an
// inner IPv4 packet without options or an inner IPv6 packet (the result's
// sign tells which). Every check is one that parseCoreAny makes, on bytes
// read once at fixed offsets (rloc4k is Worker.rloc4k:
// never an underlay group's key). It sets the outer TTL and TOS, iid and
// innerLen in pk and returns where the LISP header's slice ends (the UDP
// payload's end) for core4Header, negated for an inner IPv6 packet
// (core4Six); for any other frame it returns 0, having set nothing.
func core4(b []byte, rloc4k uint64, pk *pktInfo) int {
	if len(b) < core4Min || binary.BigEndian.Uint32(b[12:])&0xffffff00 != 0x08004500 {
		return 0
	}
	const (
		ipOff    = wire.EthernetLen
		udpOff   = ipOff + wire.IPv4MinLen
		lispOff  = udpOff + wire.UDPLen
		innerOff = lispOff + wire.HeaderLen
	)
	ip := (*[core4Min]byte)(b)
	tl := int(binary.BigEndian.Uint16(ip[ipOff+2:]))
	if tl < core4Min-ipOff || tl > len(b)-ipOff ||
		binary.BigEndian.Uint32(ip[ipOff+6:])&0x3fff00ff != uint32(wire.ProtoUDP) || // no MF, no offset (not a fragment), UDP
		1<<32|uint64(binary.BigEndian.Uint32(ip[ipOff+16:])) != rloc4k || // also not an underlay group: rloc4k is not one
		!checksum20Valid(ip[ipOff:udpOff]) {
		return 0
	}
	pl := binary.BigEndian.Uint32(ip[udpOff+2:]) // UDP destination port, length
	ul := int(pl & 0xffff)
	flags := ip[lispOff]
	if ul < core4Min-udpOff || ul > tl-wire.IPv4MinLen || pl>>16 != wire.DataPort ||
		flags&(wire.FlagN|wire.FlagV) == wire.FlagN|wire.FlagV {
		return 0
	}
	if ip[innerOff] != 0x45 {
		return core4Six(ip, ul, flags, pk)
	}
	itl := int(binary.BigEndian.Uint16(ip[innerOff+2:]))
	if itl < wire.IPv4MinLen || itl > ul-wire.UDPLen-wire.HeaderLen {
		return 0
	}
	setCore4(pk, ip, flags, itl)
	return udpOff + ul
}

// setCore4 sets what core4 sets in pk for frame ip that it took, whose
// LISP header's first byte is flags and inner packet itl bytes long.
func setCore4(pk *pktInfo, ip *[core4Min]byte, flags uint8, itl int) {
	pk.innerLen = itl
	pk.outerTTL, pk.outerTOS = ip[wire.EthernetLen+8], ip[wire.EthernetLen+1]
	pk.iid = 0
	if flags&wire.FlagI != 0 {
		pk.iid = binary.BigEndian.Uint32(ip[core4Inner-wire.HeaderLen+4:]) >> 8 // wire.Header.InstanceID
	}
}

// core4Six is the end of core4 for a frame whose headers up to the LISP
// header (flags: its first byte) core4 took, with UDP length ul: an inner
// IPv6 packet, wire.IPv6.Validate's checks, whose 40 bytes lie within the
// frame (its length fits the UDP payload, which fits the outer packet,
// which fits the frame). It returns core4's result negated, having set
// what core4 sets (the caller of fillCore4 then sets what differs,
// core4Addrs6), or 0 having set nothing. A function of its own so that
// the IPv4 path through core4 is the same as before it.
func core4Six(ip *[core4Min]byte, ul int, flags uint8, pk *pktInfo) int {
	itl := wire.IPv6Len + int(binary.BigEndian.Uint16(ip[core4Inner+4:]))
	if ip[core4Inner]>>4 != 6 || itl > ul-wire.UDPLen-wire.HeaderLen {
		return 0
	}
	setCore4(pk, ip, flags, itl)
	return -(wire.EthernetLen + wire.IPv4MinLen + ul) // -(udpOff + ul)
}

// fillCore4 fills the rest of pk for a frame that core4 took with an
// inner IPv4 packet (its addresses are left in the frame: lazyAddrs); for
// an inner IPv6 packet (core4's result negative) coreAddrs6 follows it.
func fillCore4(pk *pktInfo, slot int) { fillCore(pk, slot, core4Inner, true) }

// fillCore is fillCore4 and fillCore6: the inner packet at innerOff, under
// an outer IPv4 header (outerV4) or an IPv6 one, at the Ethernet header's
// end.
func fillCore(pk *pktInfo, slot, innerOff int, outerV4 bool) {
	pk.slot, pk.outerOff = slot, wire.EthernetLen
	pk.outerV4, pk.v4 = outerV4, true
	pk.innerOff = innerOff
	pk.lazyAddrs = true
}

// coreAddrs6 makes pk, filled by fillCore4 (or fillCore6), that of frame
// b's inner IPv6 packet at innerOff (core4Six, core6): not IPv4, with its
// addresses.
func coreAddrs6(pk *pktInfo, b []byte, innerOff int) {
	pk.v4, pk.lazyAddrs = false, false
	in := (*[wire.IPv6Len]byte)(b[innerOff:])
	pk.dst = netip.AddrFrom16([16]byte(in[24:40]))
	pk.src = netip.AddrFrom16([16]byte(in[8:24]))
}

// coreHeader is the LISP header of frame b that core4 (or core6) took,
// whose inner packet starts at innerOff and whose LISP header's slice
// ends at lispEnd (the result, negated for an inner IPv6 packet).
func coreHeader(b []byte, innerOff, lispEnd int) wire.Header {
	return wire.Header(b[innerOff-wire.HeaderLen : max(lispEnd, -lispEnd)])
}

// parseCoreFast is core4 and fillCore4, or core6 and fillCore6: it
// returns the LISP header, or reports false, having set nothing, for a
// frame neither takes.
func (w *Worker) parseCoreFast(pk *pktInfo, slot int, b []byte) (wire.Header, bool) {
	off := core4Inner
	le := core4(b, w.rloc4k, pk)
	if le != 0 {
		fillCore4(pk, slot)
	} else if le = core6(b, w.rloc6k, pk); le != 0 {
		off = core6Inner
		fillCore6(pk, slot)
	} else {
		return nil, false
	}
	if le < 0 {
		coreAddrs6(pk, b, off)
	}
	return coreHeader(b, off, le), true
}

// core6Inner is where core6's inner header starts, core6Min the shortest
// frame it takes (Ethernet, IPv6, UDP and LISP headers and an inner IPv4
// header).
const (
	core6Inner = wire.EthernetLen + wire.OuterIPv6Len
	core6Min   = core6Inner + wire.IPv4MinLen
)

// core6 is core4 for a packet over an IPv6 underlay: an untagged IPv6
// packet whose next header is UDP (no extension header: parseCoreAny's
// notLISP), whose payload lies within the frame, to our RLOC (rloc6k:
// Worker.rloc6k, never an underlay group; nil takes nothing), UDP to the
// LISP data port, its length within the payload, a valid LISP header and
// an inner IPv4 packet without options or an inner IPv6 packet, lying
// within the UDP payload. Every check is one that parseCoreAny makes. It
// sets the outer hop limit and traffic class (pk.outerTTL, outerTOS),
// iid and innerLen and returns core4's result for it (the UDP payload's
// end, negated for an inner IPv6 packet), or 0 having set nothing.
func core6(b []byte, rloc6k *[2]uint64, pk *pktInfo) int {
	if rloc6k == nil || len(b) < core6Min || binary.BigEndian.Uint32(b[12:])&0xfffff000 != 0x86dd6000 {
		return 0
	}
	const (
		ipOff   = wire.EthernetLen
		udpOff  = ipOff + wire.IPv6Len
		lispOff = udpOff + wire.UDPLen
	)
	ip := (*[core6Min]byte)(b)
	le := binary.LittleEndian
	pl := int(binary.BigEndian.Uint16(ip[ipOff+4:]))
	if pl > len(b)-udpOff || ip[ipOff+6] != wire.ProtoUDP ||
		le.Uint64(ip[ipOff+24:]) != rloc6k[0] || le.Uint64(ip[ipOff+32:]) != rloc6k[1] {
		return 0
	}
	pu := binary.BigEndian.Uint32(ip[udpOff+2:]) // UDP destination port, length
	ul := int(pu & 0xffff)
	flags := ip[lispOff]
	if ul > pl || pu>>16 != wire.DataPort || flags&(wire.FlagN|wire.FlagV) == wire.FlagN|wire.FlagV {
		return 0
	}
	// The inner packet's length, within the UDP payload (which makes the
	// UDP length at least core6Min's): an IPv6 one's 40 bytes then lie
	// within the frame, as in core4Six.
	in := ip[core6Inner:]
	itl, end := 0, udpOff+ul
	switch {
	case in[0] == 0x45:
		itl = int(binary.BigEndian.Uint16(in[2:]))
		if itl < wire.IPv4MinLen {
			return 0
		}
	case in[0]>>4 == 6:
		itl, end = wire.IPv6Len+int(binary.BigEndian.Uint16(in[4:])), -end
	default:
		return 0
	}
	if itl > ul-wire.UDPLen-wire.HeaderLen {
		return 0
	}
	pk.innerLen = itl
	pk.outerTTL, pk.outerTOS = ip[ipOff+7], uint8(binary.BigEndian.Uint16(ip[ipOff:])>>4)
	pk.iid = 0
	if flags&wire.FlagI != 0 {
		pk.iid = binary.BigEndian.Uint32(ip[lispOff+4:]) >> 8 // wire.Header.InstanceID
	}
	return end
}

// fillCore6 is fillCore4 for a frame core6 took.
func fillCore6(pk *pktInfo, slot int) { fillCore(pk, slot, core6Inner, false) }

// core6Shift is how much further in a frame core6 takes the inner packet
// starts than in one core4 takes: the outer headers' difference.
const core6Shift = core6Inner - core4Inner

// coreNot4 is fromCoreBatch's parse of frame j, b its bytes, that core4
// did not take: a frame core6 takes is parsed as core4's are (fillCore6,
// coreInner, coreInner4's RTR case), and, with now, delivered at once in
// deliver4's (deliver6's) common case; any other goes through
// parseCoreAny. It reports true when it delivered the frame (pk.act is
// then not set).
//
// deliver4 and deliver6 read the inner header at core4Inner: they are
// handed the frame with its start moved core6Shift bytes on, put back when
// they refuse it. They compare a delivery memo entry's offer tag for
// packets over IPv4 (nextHop.dkey): only while the decap offload offers
// nothing (w.doet 0, every tag 0) do they take packets over IPv6, whose
// offers deliverAt makes (nextHop.doff6).
func (w *Worker) coreNot4(pk *pktInfo, f *ring.Frame, b []byte, slot, j int, obsFlags uint8, now bool) bool {
	le := core6(b, w.rloc6k, pk)
	if le == 0 {
		w.parseCoreAny(pk, slot, f, b)
		return false
	}
	if now && w.doet == 0 && w.lastSite.fast == 1<<32|uint64(pk.iid) && b[core6Inner-wire.HeaderLen]&obsFlags == 0 {
		n := len(b)
		if s := f.Reframe(core6Shift, n-core6Shift); s != nil {
			if le > 0 && w.deliver4(f, (*[core4Min]byte)(s), pk, j) || le < 0 && w.deliver6(f, s, pk, j) {
				return true
			}
			f.Reframe(-core6Shift, n)
		}
	}
	fillCore6(pk, slot)
	if le > 0 && w.lastSite.rtr == 1<<32|uint64(pk.iid) && b[core6Inner-wire.HeaderLen]&obsFlags == 0 {
		// coreInner4's RTR case, and coreInner's rule for packets over
		// IPv6 while offloading.
		pk.rtr, pk.act = true, actForward
		w.rtrFlow4(pk, b[core6Inner:])
		if w.oe != 0 {
			pk.fset = 0
		}
		return false
	}
	if le < 0 {
		coreAddrs6(pk, b, core6Inner)
	}
	w.coreInner(pk, f, b, coreHeader(b, core6Inner, le))
	return false
}

// coreInner4 is fillCore4 and coreInner for a frame of a batch that core4
// took (le its result), with coreInner's common RTR case written out: the
// instance-ID of the last packet, one no site port serves (siteMemo.rtr),
// and no LISP flag in obsFlags (nothing to observe).
func (w *Worker) coreInner4(pk *pktInfo, f *ring.Frame, b []byte, slot, le int, obsFlags uint8) {
	fillCore4(pk, slot)
	if w.lastSite.rtr != 1<<32|uint64(pk.iid) || b[core4Inner-wire.HeaderLen]&obsFlags != 0 || le < 0 {
		if le < 0 {
			coreAddrs6(pk, b, core4Inner)
		}
		w.coreInner(pk, f, b, coreHeader(b, core4Inner, le))
		return
	}
	pk.rtr, pk.act = true, actForward
	w.rtrFlow4(pk, b[core4Inner:])
}

// rtrFlow4 sets the flow hash (wire.FlowHash) of pk's inner IPv4 packet
// without options, in, and the flow memo's key and set for it
// (stageProbeCore's work).
func (w *Worker) rtrFlow4(pk *pktInfo, in []byte) {
	pk.hash = wire.FlowFinish(wire.FlowMix(wire.FlowMix(w.flow0, binary.BigEndian.Uint64(in[12:20])), flowL4(in, pk.innerLen)))
	if m := w.memo; m.v4 != nil && pk.iid <= cacheMaxIID {
		m.flowKey4(pk, [4]byte(in[16:20]))
	}
}

// parseCoreAny is parseCore for any frame.
func (w *Worker) parseCoreAny(pk *pktInfo, slot int, f *ring.Frame, b []byte) {
	et, off, _, err := wire.Ethernet(b).Payload()
	if err != nil {
		w.drop(f, DropBadEthernet)
		return
	}
	pk.slot, pk.outerOff = slot, off
	var udpOff, end int
	var ug netip.Addr // the outer destination when it is an underlay group
	switch et {
	case wire.EtherTypeIPv4:
		ip := wire.IPv4(b[off:])
		if err := ip.Validate(len(b) - off); err != nil {
			w.drop(f, ipDrop(err))
			return
		}
		if !checksumValid(ip) {
			w.drop(f, DropBadIP)
			return
		}
		if ip.Protocol() != wire.ProtoUDP {
			w.notLISP(f)
			return
		}
		if b[off+16]&0xf0 == 0xe0 {
			// An underlay multicast group (G-RLOC) the ETR joined: the
			// steering program only passes joined groups up.
			ug = netip.AddrFrom4([4]byte(b[off+16 : off+20]))
		} else if !w.rloc4.IsValid() || [4]byte(b[off+16:off+20]) != w.rloc4.As4() {
			w.drop(f, DropNotOurRLOC)
			return
		}
		if ip.IsFragment() {
			// An ITR fragmented the encapsulated packet for the path MTU
			// (RFC 9300 §7.1): the ETR reassembles it.
			pk.act = actReasm
			return
		}
		pk.outerV4 = true
		pk.outerTTL, pk.outerTOS = ip.TTL(), ip.TOS()
		udpOff, end = off+ip.HeaderLength(), off+int(ip.TotalLength())
	case wire.EtherTypeIPv6:
		ip := wire.IPv6(b[off:])
		if err := ip.Validate(len(b) - off); err != nil {
			w.drop(f, ipDrop(err))
			return
		}
		if ip.NextHeader() != wire.ProtoUDP {
			w.notLISP(f) // extension headers are not looked through
			return
		}
		if b[off+24] == 0xff {
			ug = netip.AddrFrom16([16]byte(b[off+24 : off+40]))
		} else if !w.rloc6.IsValid() || [16]byte(b[off+24:off+40]) != w.rloc6.As16() {
			w.drop(f, DropNotOurRLOC)
			return
		}
		pk.outerV4 = false
		pk.outerTTL, pk.outerTOS = ip.HopLimit(), ip.TrafficClass()
		udpOff, end = off+wire.IPv6Len, off+wire.IPv6Len+int(ip.PayloadLength())
	default:
		w.drop(f, DropBadEthernet)
		return
	}
	u := wire.UDP(b[udpOff:end])
	if err := u.Validate(end - udpOff); err != nil {
		w.drop(f, DropBadUDP)
		return
	}
	if u.DstPort() != wire.DataPort {
		w.notLISP(f)
		return
	}
	// The UDP checksum is not verified: zero must be accepted (RFC 9300
	// §5.3, RFC 6935 §5) and the inner packet carries its own checks.
	uend := udpOff + int(u.Length())
	h := wire.Header(b[udpOff+wire.UDPLen : uend])
	if h.Validate() != nil {
		w.drop(f, DropBadLISP)
		return
	}
	if ug.IsValid() {
		w.underlayGroup(ug)
	}
	var iid uint32
	if h.InstanceIDPresent() {
		iid = h.InstanceID()
	}
	innerOff := udpOff + wire.UDPLen + wire.HeaderLen
	if r := w.parseInner(pk, b[innerOff:uend], 0, false); r != dropNone {
		w.drop(f, r)
		return
	}
	pk.iid, pk.innerOff = iid, innerOff
	w.coreInner(pk, f, b, h)
}

// coreInner finishes parseCore for a packet whose headers are valid (pk
// filled, h its LISP header): instance-ID, observation, gleaning, and what
// the last stage does with it.
func (w *Worker) coreInner(pk *pktInfo, f *ring.Frame, b []byte, h wire.Header) {
	// w.siteSlot and the port's Glean, remembered for the last
	// instance-ID seen (the site ports never change).
	sm := &w.lastSite
	if sm.key != 1<<32|uint64(pk.iid) {
		*sm = siteMemo{key: 1<<32 | uint64(pk.iid), slot: w.siteSlot(pk.iid)}
		if sm.slot >= 0 {
			sm.glean = w.ports[sm.slot].glean
			sm.dkey = 1<<32 | uint64(sm.slot)<<33 | uint64(w.doet)<<48
			if !sm.glean && w.cfg.LocalGroups == nil {
				sm.fast = sm.key
			}
		} else if w.cfg.RTR {
			sm.rtr = sm.key
		}
	}
	site := sm.slot
	if site < 0 && !w.cfg.RTR {
		w.drop(f, DropWrongIID)
		return
	}
	// Echo requests and LSBs are always reported; a nonce alone only while
	// the slow path waits for an echo (ObservationRing.WatchNonces).
	if f0 := h[0]; f0&(wire.FlagE|wire.FlagL) != 0 || f0&wire.FlagN != 0 && w.obs.nonces.Load() {
		w.observe(pk, b, h)
	}
	if site >= 0 {
		pk.rtr = false
		if sm.glean {
			w.glean(pk, b)
		}
		pk.act, pk.site = actDeliver, site
		return
	}
	pk.rtr = true
	pk.act = actForward
	if in := b[pk.innerOff:]; pk.v4 && len(in) >= wire.IPv4MinLen && in[0] == 0x45 {
		w.rtrFlow4(pk, in) // stageProbeCore, from the header at hand
	} else if !pk.v4 && pk.innerLen >= wire.IPv6Len && pk.innerLen <= len(in) {
		// An inner IPv6 packet (parseInner checked its version and
		// length): hashInner without wire.FlowHash's version switch.
		pk.hash = flowHash6(in[:pk.innerLen], w.flow0)
		w.stageProbe6(pk, b)
	} else {
		w.hashInner(pk, f)
		w.stageProbeCore(pk, b)
	}
	if !pk.outerV4 && w.oe != 0 {
		// While offloading, the flow memo's offer tag (flowSlot.off) is
		// for the packets over IPv4: those over IPv6 are offered through
		// offer6's memo, which tells the outer versions apart.
		pk.fset, pk.fset6 = 0, 0
	}
}

// ugRenew is how often, at most, a worker re-tells Config.UnderlayGroup
// while LISP data keeps arriving on underlay groups: the slow path holds
// its duplicate suppression for a few of these periods after the last news
// (slowpath.UnderlayConfig.SuppressHold).
const ugRenew = int64(time.Second)

// underlayGroup notes LISP data arriving on underlay group g: it tells
// Config.UnderlayGroup when the worker's clock reached the renewal
// deadline, then not again for ugRenew; a refusal leaves the deadline so
// that the next such packet tells again. One compare per packet otherwise.
func (w *Worker) underlayGroup(g netip.Addr) {
	if w.now < w.ugNext || w.cfg.UnderlayGroup == nil {
		return
	}
	if w.cfg.UnderlayGroup(g) {
		w.ugNext = w.now + ugRenew
	}
}

// notLISP drops a core-port packet that is not UDP to port 4341. It counts
// as DropNotOurRLOC (LISP data to a port or protocol that is not ours) and
// ExtraNotLISP.
func (w *Worker) notLISP(f *ring.Frame) {
	w.extra[ExtraNotLISP]++
	w.drop(f, DropNotOurRLOC)
}

// deliver finishes ETR decapsulation: TTL and ECN into the inner header,
// outer headers stripped, the inner Ethernet header written for the inner
// destination's next hop, out of the instance-ID's site port.
func (w *Worker) deliver(pk *pktInfo, f *ring.Frame, site int) {
	w.deliverAt(pk, f, site, -1)
}

// deliverAt is deliver for frame j of the batch (sent by sendAt; j < 0:
// not a frame of a batch).
func (w *Worker) deliverAt(pk *pktInfo, f *ring.Frame, site, j int) {
	lg := w.cfg.LocalGroups
	if lg != nil {
		lazyAddrs(pk, f) // before the front moves
	}
	// SetLen to the inner packet's end and Pull to its Ethernet header in
	// one step, first: the parse stages checked that the inner packet lies
	// within the frame's bytes after at least an Ethernet header's worth
	// of outer headers, and what follows either drops the frame or sends
	// it with this front.
	b := f.Reframe(pk.innerOff-wire.EthernetLen, wire.EthernetLen+pk.innerLen)
	if len(b) < wire.EthernetLen+wire.IPv6Len && (!pk.v4 || len(b) < wire.EthernetLen+wire.IPv4MinLen) {
		w.drop(f, DropBadLength) // not a parsed packet
		return
	}
	var ttl uint8
	var k uint32 // the inner IPv4 destination's bytes
	if pk.v4 {
		in := (*[wire.EthernetLen + wire.IPv4MinLen]byte)(b)[wire.EthernetLen:]
		if pk.outerTOS&3 == wire.ECNNotECT {
			if pk.outerTTL < in[8] { // decapRules' common case, written out
				setTTL4(in, pk.outerTTL)
			}
		} else if !w.decapRules(pk, f, b[wire.EthernetLen:]) {
			return
		}
		ttl = in[8] // IPv4 TTL
		k = binary.BigEndian.Uint32(in[16:])
	} else {
		inner := b[wire.EthernetLen:]
		if !w.decapRules(pk, f, inner) {
			return
		}
		ttl = inner[7] // IPv6 hop limit
	}
	if ttl == 0 {
		w.drop(f, DropTTLExpired)
		return
	}
	if lg != nil && pk.dst.IsMulticast() && !lg.Has(pk.iid, pk.src, pk.dst) {
		w.drop(f, DropNoReceivers)
		return
	}
	var h *nextHop
	if pk.v4 {
		// w.hop(pk.dst, nil) from the destination's bytes. An entry
		// filled without a snapshot (w.snap nil) says AdjNoRoute, what
		// filling it again would say.
		h = w.del4(k)
	} else {
		h = w.hop(pk.dst, nil)
	}
	if h.st == nexthop.AdjNoRoute {
		w.drop(f, DropNoRoute)
		return
	}
	if h.st == nexthop.AdjResolved && h.out != site {
		w.drop(f, DropNoPort) // the next hop is not behind the IID's site port
		return
	}
	w.c.Inc(CounterDecap)
	if h.hlen == wire.EthernetLen {
		if h.dkey != 0 && (pk.outerV4 && h.dkey>>48 != uint64(w.doet) || !pk.outerV4 && h.doff6 != w.doet) {
			w.decapOffer(pk, h, site, k) // deliver4 (over IPv4) sends the flow's next packets here (Offload)
		}
		*(*[wire.EthernetLen]byte)(b) = *(*[wire.EthernetLen]byte)(h.hdr[:])
		if !w.ip.take(j, site) {
			w.sendAt(j, site, f)
		}
		return
	}
	w.endInPlace()
	et := wire.EtherTypeIPv6
	if pk.v4 {
		et = wire.EtherTypeIPv4
	}
	w.l2out(f, &h.adj, h.st, site, et)
}

// deliver4 is deliverAt, for frame j of a batch, in the common case of a
// frame that core4 took into pk (p its first bytes) with the instance-ID of
// w.lastSite, one deliver4 takes (siteMemo.fast), and no LISP flag that
// asks for an observation (the caller checks these): an inner packet under
// a Not-ECT outer header, with TTL left, whose destination's next-hop memo
// entry is filled for the batch's snapshot and resolved on the site port
// with an Ethernet header (nextHop.dkey). It reports false, having changed
// nothing, for any other frame, which deliverAt takes. No call but in tail
// position: nothing is spilled around one.
func (w *Worker) deliver4(f *ring.Frame, p *[core4Min]byte, pk *pktInfo, j int) bool {
	in := p[core4Inner:]
	k := binary.BigEndian.Uint32(in[16:])
	key := w.lastSite.dkey | uint64(k)
	h := &w.dels[delSlot4(k)]
	if h.dkey != key {
		if h = &w.dels[delAlt4(k)]; h.dkey != key { // the second slot (delWay)
			return false
		}
	}
	ttl := min(in[8], pk.outerTTL) // decapRules' common case, written out
	if h.snap != w.snap || pk.outerTOS&3 != wire.ECNNotECT || ttl == 0 {
		return false
	}
	if ttl != in[8] {
		lowerTTL4(in, ttl)
	}
	w.c.Inc(CounterDecap)
	// SetLen to the inner packet's end and Pull to its Ethernet header:
	// core4 checked that the inner packet lies within the frame.
	b := f.Reframe(core4Inner-wire.EthernetLen, wire.EthernetLen+pk.innerLen)
	if len(b) < wire.EthernetLen {
		w.drop(f, DropBadLength) // not what core4 took
		return true
	}
	*(*[wire.EthernetLen]byte)(b) = *(*[wire.EthernetLen]byte)(h.hdr[:])
	site := w.lastSite.slot
	if !w.ip.take(j, site) {
		w.sendAt(j, site, f)
	}
	return true
}

// deliver6 is deliver4 for a frame whose inner packet is an IPv6 one
// (core4's result negative: core4Six), b its bytes: the same conditions,
// the delivery memo entry matched by its key (nextHop.dkey: resolved on
// the site port, dkey6, the decap offload tag) and its destination, the
// address read from the frame. Under a Not-ECT outer header the hop limit
// becomes the smaller one and the traffic class stays (deliverAt's rule).
// It reports false, having changed nothing, for any other frame. Its
// last lines are deliver4's: a function for them would not inline (it
// holds two calls), and deliver4 would pay for the call (measured: 8
// instructions a packet on decap-100B, 11 on decap-120B-v6).
func (w *Worker) deliver6(f *ring.Frame, b []byte, pk *pktInfo, j int) bool {
	in := (*[wire.IPv6Len]byte)(b[core4Inner:])
	x := delKey6(binary.LittleEndian.Uint64(in[24:]), binary.LittleEndian.Uint64(in[32:]))
	dst := netip.AddrFrom16([16]byte(in[24:40]))
	key := w.lastSite.dkey&^(1<<32) | dkey6
	h := &w.dels[delSlot6(x)]
	if h.dkey != key || h.dst != dst {
		if h = &w.dels[delAlt6(x)]; h.dkey != key || h.dst != dst { // the second slot (delWay)
			return false
		}
	}
	ttl := min(in[7], pk.outerTTL)
	if h.snap != w.snap || pk.outerTOS&3 != wire.ECNNotECT || ttl == 0 {
		return false
	}
	in[7] = ttl
	w.c.Inc(CounterDecap)
	// SetLen to the inner packet's end and Pull to its Ethernet header:
	// core4 checked that the inner packet lies within the frame.
	fb := f.Reframe(core4Inner-wire.EthernetLen, wire.EthernetLen+pk.innerLen)
	if len(fb) < wire.EthernetLen {
		w.drop(f, DropBadLength) // not what core4 took
		return true
	}
	*(*[wire.EthernetLen]byte)(fb) = *(*[wire.EthernetLen]byte)(h.hdr[:])
	site := w.lastSite.slot
	if !w.ip.take(j, site) {
		w.sendAt(j, site, f)
	}
	return true
}

// observe records the nonce and LSBs of an accepted LISP data packet for
// the slow path (echo-nonce, RFC 9300 §10.1; locator-status-bits, §10).
func (w *Worker) observe(pk *pktInfo, b []byte, h wire.Header) {
	o := w.obs.next()
	if o == nil {
		w.extra[ExtraObservationLost]++
		return
	}
	if pk.outerV4 {
		o.RLOC = netip.AddrFrom4([4]byte(b[pk.outerOff+12 : pk.outerOff+16]))
	} else {
		o.RLOC = netip.AddrFrom16([16]byte(b[pk.outerOff+8 : pk.outerOff+24]))
	}
	if o.Glean { // the slot held a gleaning report: only those set EID
		o.Glean, o.EID = false, netip.Addr{}
	}
	_ = h[wire.HeaderLen-1]
	w0 := binary.BigEndian.Uint32(h)
	o.IID, o.Flags, o.Nonce, o.Time = pk.iid, uint8(w0>>24), w0&0xffffff, w.now // h.Nonce()
	o.LSBs = binary.BigEndian.Uint32(h[4:])                                     // h.LSBs(): all 32 bits without I, the low 8 with it
	if w0&(uint32(wire.FlagI)<<24) != 0 {
		o.LSBs &= 0xff
	}
	w.obs.commit()
}

// gleanSlots is the size of a worker's gleaning memo (a power of two).
const gleanSlots = 256

// gleanMemo remembers, per slot of a small direct-mapped table, the last EID
// reported for gleaning and when, so one EID is reported once per interval.
type gleanMemo struct {
	slot [gleanSlots]struct {
		iid uint32
		eid netip.Addr
		at  int64
	}
}

// glean reports the inner source EID and outer source RLOC of a packet
// being delivered on a gleaning site port (RFC 9300 §9), at most once per
// EID per GleanInterval.
func (w *Worker) glean(pk *pktInfo, b []byte) {
	in := b[pk.innerOff:]
	var eid netip.Addr
	if pk.v4 {
		eid = netip.AddrFrom4([4]byte(in[12:16]))
	} else {
		eid = netip.AddrFrom16([16]byte(in[8:24]))
	}
	a := eid.As16()
	h := pk.iid * 0x9e3779b1
	for i := 0; i < 16; i += 4 {
		h = (h ^ uint32(a[i])<<24 ^ uint32(a[i+1])<<16 ^ uint32(a[i+2])<<8 ^ uint32(a[i+3])) * 0x85ebca6b
	}
	h ^= h >> 15
	s := &w.gleaned.slot[h&(gleanSlots-1)]
	if s.eid == eid && s.iid == pk.iid && w.now-s.at < int64(w.cfg.GleanInterval) {
		return
	}
	o := w.obs.next()
	if o == nil {
		w.extra[ExtraObservationLost]++
		return
	}
	s.iid, s.eid, s.at = pk.iid, eid, w.now
	if pk.outerV4 {
		o.RLOC = netip.AddrFrom4([4]byte(b[pk.outerOff+12 : pk.outerOff+16]))
	} else {
		o.RLOC = netip.AddrFrom16([16]byte(b[pk.outerOff+8 : pk.outerOff+24]))
	}
	o.IID, o.Flags, o.Nonce, o.LSBs, o.Time = pk.iid, 0, 0, 0, w.now
	o.Glean, o.EID = true, eid
	w.obs.commit()
}

// Observation is what the ETR saw in one LISP data header, for the slow
// path's echo-nonce and locator-status-bits processing, or, with Glean set,
// a source EID to glean.
type Observation struct {
	// RLOC is the outer source address: the ITR or RTR that sent the packet.
	RLOC netip.Addr
	// IID is the packet's instance-ID (0 without the I bit).
	IID uint32
	// Flags is the first byte of the LISP header: N, L, E, V, I
	// (RFC 9300 §5.3).
	Flags uint8
	// Nonce is the 24-bit nonce when Flags has N: an echo request when it
	// also has E, otherwise possibly the echo of one of ours (RFC 9300
	// §10.1).
	Nonce uint32
	// LSBs are the locator-status-bits when Flags has L (8 bits with I).
	LSBs uint32
	// Time is the worker's monotonic clock (ns since it started).
	Time int64
	// Glean marks a gleaning report: EID (the inner source) was seen behind
	// RLOC in instance-ID IID (RFC 9300 §9); the header fields are zero.
	Glean bool
	// EID is the inner source address of a gleaning report.
	EID netip.Addr
}

// ObservationRing is a single-producer single-consumer ring of
// Observations from one worker to the slow path. The worker reports a LISP
// data header that has the E bit (an echo request) or the L bit (LSBs), and
// one that has only the N bit (a nonce, possibly the echo of one the slow
// path sent) only while WatchNonces is on. The worker writes without
// waiting (when the ring is full the observation is lost and counted as
// ExtraObservationLost) and publishes what it wrote once per batch; one
// slow-path goroutine Pops. No locks: the producer and consumer indices are
// atomics, and a slot is rewritten only after the consumer moved past it.
type ObservationRing struct {
	_       [cacheLine]byte
	prod    atomic.Uint64 // published by the worker
	_       [cacheLine - 8]byte
	cons    atomic.Uint64 // advanced by the consumer
	_       [cacheLine - 8]byte
	nonces  atomic.Bool // set by the consumer: report nonces without E or L
	onWatch func()      // called after nonces is turned on (Offload.Invalidate)
	local   uint64      // worker: next slot to write
	seen    uint64      // worker: last consumer position it loaded
	mask    uint64
	slots   []Observation
}

func newObservationRing(n int) *ObservationRing {
	if n <= 0 {
		n = 1024
	}
	size := 2
	for size < n {
		size <<= 1
	}
	return &ObservationRing{mask: uint64(size - 1), slots: make([]Observation, size)}
}

// next returns the slot to fill, or nil when the ring is full (worker only).
func (r *ObservationRing) next() *Observation {
	if r.local-r.seen > r.mask {
		r.seen = r.cons.Load()
		if r.local-r.seen > r.mask {
			return nil
		}
	}
	return &r.slots[r.local&r.mask]
}

// commit makes the slot returned by next part of the ring (worker only).
func (r *ObservationRing) commit() { r.local++ }

// publish makes committed observations visible to the consumer (worker
// only, once per batch).
func (r *ObservationRing) publish() {
	if r.local != r.prod.Load() {
		r.prod.Store(r.local)
	}
}

// Pop removes the oldest published observation into *o and reports whether
// there was one. Only one goroutine may call Pop.
func (r *ObservationRing) Pop(o *Observation) bool {
	c := r.cons.Load()
	if c == r.prod.Load() {
		return false
	}
	*o = r.slots[c&r.mask]
	r.cons.Store(c + 1)
	return true
}

// WatchNonces turns on (or off) the reporting of data headers whose only
// option is a nonce (N without E or L): the slow path turns it on while it
// waits for the echo of a nonce it sent (RFC 9300 §10.1) and off when it no
// longer does. Off at first; headers with E or L are reported either way.
//
// With an Offload, turning it on starts a new offload epoch: the kernel
// delivered the packets whose only reported flag would be N itself.
func (r *ObservationRing) WatchNonces(on bool) {
	r.nonces.Store(on)
	if on && r.onWatch != nil {
		r.onWatch()
	}
}

// Len returns the number of published observations not yet popped.
func (r *ObservationRing) Len() int { return int(r.prod.Load() - r.cons.Load()) }
