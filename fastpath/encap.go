package fastpath

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// OuterConfig is what the outer headers a worker writes look like: the local
// RLOCs and the LISP header options. Its BuildTemplate method is the
// cache.Config.BuildTemplate of the map-cache the workers read.
type OuterConfig struct {
	// RLOC4 and RLOC6 are this router's RLOCs, the outer source address per
	// family (RFC 9300 §5.3 "Outer Header: Source Routing Locator"). The ETR
	// accepts LISP data packets only to these addresses.
	RLOC4, RLOC6 netip.Addr
	// Nonce sets the N bit and writes a fresh 24-bit nonce into every
	// packet (RFC 9300 §5.3, §10.1).
	Nonce bool
	// LSBs sets the L bit and writes LSBValue as the locator-status-bits
	// (only the low 8 bits fit next to an instance-ID: RFC 9300 §5.3, §10).
	LSBs     bool
	LSBValue uint32
	// DontFragment sets DF in outer IPv4 headers (RFC 791 §3.1). Inner
	// packets that do not fit the path MTU are handled before encapsulation
	// either way (RFC 9300 §7.1).
	DontFragment bool
	// UDPChecksum computes outer UDP checksums instead of sending zero
	// (RFC 9300 §5.3: zero SHOULD be sent).
	UDPChecksum bool
}

// BuildTemplate returns the outer-header template (IPv4 or IPv6, UDP to port
// 4341, LISP with the I bit and instance-ID iid) for RLOC r, in the outer
// family of r's address, or nil when this router has no RLOC of that family.
// The EID family does not matter: IPv4 and IPv6 EIDs share templates.
func (o OuterConfig) BuildTemplate(iid uint32, _ cache.Family, r *cache.RLOC) []byte {
	ou := wire.Outer{
		Dst:          r.Addr,
		LISP:         wire.HeaderFields{Flags: wire.FlagI, InstanceID: iid & wire.MaxInstanceID},
		DontFragment: o.DontFragment,
		UDPChecksum:  o.UDPChecksum,
	}
	if o.Nonce {
		ou.LISP.Flags |= wire.FlagN
	}
	if o.LSBs {
		ou.LISP.Flags |= wire.FlagL
		ou.LISP.LSBs = o.LSBValue
	}
	if r.Addr.Unmap().Is4() {
		if !o.RLOC4.IsValid() {
			return nil
		}
		ou.Src = o.RLOC4
	} else {
		if !o.RLOC6.IsValid() {
			return nil
		}
		ou.Src = o.RLOC6
	}
	b, err := wire.AppendOuter(make([]byte, 0, wire.OuterIPv6Len), &ou)
	if err != nil {
		return nil
	}
	return b
}

// dropNone is the "no drop" value of functions returning a DropReason.
const dropNone = NumDropReasons

// pktInfo is what the worker learned about the packet it is processing.
// The batch loops step through arrays of them: the small fields share
// words, so that a batch's reads span fewer lines.
type pktInfo struct {
	slot     int // ingress port
	innerOff int // offset of the inner IP header in the frame
	innerLen int // inner IP total length
	v4       bool
	rtr      bool // arrived encapsulated (RTR): TTL/ECN from the outer header
	iid      uint32
	dst, src netip.Addr
	hash     uint32
	outerTTL uint8
	outerTOS uint8
	found    bool // lookup found e
	// lazyAddrs: dst and src are not filled yet (lazyAddrs fills them
	// from the frame); the batch parses leave them out (the site's for
	// IPv4 and IPv6, an RTR's for an inner IPv4 packet) for the stages
	// that need them (probe, forward).
	lazyAddrs bool
	outerOff  int // offset of the outer IP header (decap)
	outerV4   bool
	act       pktAction // what the batch's last stage does with it
	fset      flowRef   // the flow memo set the parse stage found for an IPv4 dst and hash (0: none, probe finds the entry)
	mkey      uint64    // with fset: the memo4 key of dst; with fset6, dst's first half (stageProbe6)
	mlo       uint64    // with fset6: dst's second half
	hop       *nextHop  // a flow memo hit: the next-hop memo entry to send through (lookupStage; nil: none)
	hser      uint32    // with hop: the serial hop held when the flow memo remembered it
	// fset6 is fset for an IPv6 dst: kept apart, so that the loops that
	// take IPv4 flow memo hits (encapLoop's runFlow) test nothing more
	// for them; lookupStage takes IPv6 hits (pk.hop), hopRun sends them.
	fset6 flowRef
	site  int          // actDeliver: the site port
	e     *cache.Entry // lookup's result
	r     *cache.RLOC  // the RLOC e selects for the flow
}

// A batch's pktInfos take at most 160 bytes each (the fields' order).
var _ [160 - unsafe.Sizeof(pktInfo{})]byte

// pktAction is what the last stage of a batch does with a parsed packet.
type pktAction uint8

// Packet actions.
const (
	actDone    pktAction = iota // dropped or consumed while parsing
	actForward                  // look up and forward (encapsulate, replicate, hold)
	actDeliver                  // ETR: deliver to site port pk.site
	actReasm                    // ETR: an outer IPv4 fragment to reassemble
	actParse                    // ITR: left by the site batch's parse loop to parseSiteRest
)

// ipDrop maps an IP validation error to its drop reason.
func ipDrop(err error) DropReason {
	switch err {
	case wire.ErrIPHeaderLength:
		return DropBadIHL
	case wire.ErrIPTotalLength:
		return DropBadLength
	}
	return DropBadIP // truncated header, wrong version
}

// parseInner validates the inner IP packet at the start of b (version ver,
// or by its version nibble when ver is 0) and fills pk. verify checks the
// IPv4 header checksum (RFC 1812 §5.2.2): done for packets from a site; for
// decapsulated packets the ETR leaves that to the receiving host, as the
// checksum is only ever updated incrementally on the way.
func (w *Worker) parseInner(pk *pktInfo, b []byte, ver uint8, verify bool) DropReason {
	if ver == 0 {
		if len(b) == 0 {
			return DropBadIP
		}
		ver = b[0] >> 4
	}
	switch ver {
	case 4:
		ip := wire.IPv4(b)
		if err := ip.Validate(len(b)); err != nil {
			return ipDrop(err)
		}
		if verify && !ip.ChecksumValid() {
			return DropBadIP
		}
		pk.v4 = true
		pk.innerLen = int(ip.TotalLength())
		pk.dst = netip.AddrFrom4([4]byte(b[16:20]))
		pk.src = netip.AddrFrom4([4]byte(b[12:16]))
	case 6:
		ip := wire.IPv6(b)
		if err := ip.Validate(len(b)); err != nil {
			return ipDrop(err)
		}
		pk.v4 = false
		pk.innerLen = wire.IPv6Len + int(ip.PayloadLength())
		pk.dst = netip.AddrFrom16([16]byte(b[24:40]))
		pk.src = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return DropBadIP
	}
	return dropNone
}

// fromSite handles one frame received on a site port (ITR/PITR) outside a
// batch: a held packet released, for instance.
func (w *Worker) fromSite(slot int, f *ring.Frame) {
	var pk pktInfo
	w.snap = w.cfg.NextHops.Load()
	if w.parseSite(&pk, slot, f) {
		w.lookup(&pk)
		w.forward(&pk, f)
	}
}

// fromSiteBatch handles the frames a site port received, stage by stage so
// that the memory latency of one packet's lookup overlaps the work on the
// others: parse every frame, then look every destination up, then forward
// every packet in arrival order (the order in which they leave and are held
// is the order in which they came). A leading run of flow memo hits skips
// the separate stages (flowRun).
//
// The parse loop takes the common case, an untagged IPv4 packet without
// options whose header checks out, without a call: parseSite's work
// (parseIPv4NoOptions and wire.FlowHash written out; the addresses are
// read from the frame only if a later stage needs them, lazyAddrs) and the
// flow memo's set (with the memo key) for the probe stage. It leaves every
// other frame to parseSiteRest (actParse): a call in the loop, even one on
// a path not taken, made it spill and reload its registers on every packet.
func (w *Worker) fromSiteBatch(slot int, fs []ring.Frame) {
	pks := w.pkts[:len(fs)]
	w.snap = w.cfg.NextHops.Load()
	iid := w.ports[slot].iid
	m := w.memo
	memo4 := m.v4 != nil && iid <= cacheMaxIID
	kb := m.key4(iid, [4]byte{}) // m.key4(iid, a) is kb | a: the address's part added per packet
	h0 := w.flow0
	be, le := binary.BigEndian, binary.LittleEndian
	rest := false
	for j := range fs {
		pk := &pks[j]
		b := fs[j].Bytes()
		if len(b) < wire.EthernetLen+wire.IPv4MinLen {
			pk.act, rest = actParse, true
			continue
		}
		p := (*[wire.EthernetLen + wire.IPv4MinLen]byte)(b)
		ip := (*[wire.IPv4MinLen]byte)(p[wire.EthernetLen:])
		tl := int(be.Uint16(ip[2:]))
		// EtherType IPv4 and version 4, IHL 5 in one compare.
		if le.Uint32(p[12:])&0xffffff != 0x450008 || tl < wire.IPv4MinLen || tl > len(b)-wire.EthernetLen || !checksum20Valid(ip[:]) {
			pk.act, rest = actParse, true // parseSiteRest drops it, with the reason
			continue
		}
		pk.slot, pk.innerOff, pk.iid, pk.rtr = slot, wire.EthernetLen, iid, false
		pk.v4, pk.innerLen, pk.lazyAddrs = true, tl, true
		hash := wire.FlowFinish(wire.FlowMix(wire.FlowMix(h0, be.Uint64(ip[12:20])), flowL4(b[wire.EthernetLen:], tl))) // wire.FlowHash of the packet
		pk.hash, pk.act, pk.fset = hash, actForward, 0
		if memo4 && ip[16]&0xf0 != 0xe0 { // not multicast (224.0.0.0/4)
			pk.mkey = kb | uint64(be.Uint32(ip[16:20]))
			pk.fset = m.flowSet4(pk.mkey, hash) // prefetched by flowRun
		}
	}
	if rest {
		w.parseSiteRest(pks, fs, slot)
	}
	w.beginBatch(fs)
	k := w.flowRun(pks, fs, 0)
	w.lookupStage(pks[k:], fs[k:])
	for j := k; j < len(pks); j++ {
		// A run of flow memo hits still good that encapRun takes, then
		// the packet that ended it through forwardAt.
		if j = w.hopRun(pks, fs, j); j == len(pks) {
			break
		}
		if pk := &pks[j]; pk.act == actForward {
			w.forwardAt(pk, fs, j)
		}
	}
	w.finishBatch()
}

// parseSiteRest parses the frames of a site batch that the batch's parse
// loop left (actParse). It takes the untagged IPv6 packets whose length
// checks out first, in a loop without a call but the flow hash's:
// parseSite's work and stageProbe6's (the flow memo's set, with the memo
// key), the addresses left in the frame (lazyAddrs). Then it gives any
// other frame to parseSite: it drops them, or makes them packets to
// forward with the flow memo's set ready (stageProbe).
func (w *Worker) parseSiteRest(pks []pktInfo, fs []ring.Frame, slot int) {
	iid := w.ports[slot].iid
	m := w.memo
	memo6 := m.v4 != nil && iid <= cacheMaxIID
	h0 := w.flow0
	be := binary.BigEndian
	rest := false
	for j := range pks {
		pk := &pks[j]
		if pk.act != actParse {
			continue
		}
		b := fs[j].Bytes()
		if len(b) < wire.EthernetLen+wire.IPv6Len {
			rest = true
			continue
		}
		p := (*[wire.EthernetLen + wire.IPv6Len]byte)(b)
		ip := (*[wire.IPv6Len]byte)(p[wire.EthernetLen:])
		n := wire.IPv6Len + int(be.Uint16(ip[4:]))
		// EtherType IPv6 and version 6; the payload within the frame
		// (parseSite drops the frame otherwise).
		if be.Uint16(p[12:]) != wire.EtherTypeIPv6 || ip[0]>>4 != 6 || n > len(b)-wire.EthernetLen {
			rest = true
			continue
		}
		pk.slot, pk.innerOff, pk.iid, pk.rtr = slot, wire.EthernetLen, iid, false
		pk.v4, pk.innerLen, pk.lazyAddrs = false, n, true
		hash := flowHash6(b[wire.EthernetLen:wire.EthernetLen+n], h0)
		pk.hash, pk.act, pk.fset, pk.fset6 = hash, actForward, 0, 0
		// stageProbe6 (flowKey6, written out): a unicast destination that
		// is not an IPv4-mapped address.
		if hi, lo := be.Uint64(ip[24:]), be.Uint64(ip[32:]); memo6 && ip[24] != 0xff && (hi != 0 || lo>>32 != 0xffff) {
			pk.mkey, pk.mlo = hi, lo
			pk.fset6 = m.flowSet6(iid, hi, lo, hash)
		}
	}
	if !rest {
		return
	}
	for j := range pks {
		pk := &pks[j]
		if pk.act != actParse {
			continue
		}
		pk.act, pk.fset, pk.lazyAddrs = actDone, 0, false
		if w.parseSite(pk, slot, &fs[j]) {
			pk.act = actForward
			if pk.v4 {
				w.stageProbe(pk)
			} else {
				w.stageProbe6(pk, fs[j].Bytes())
			}
		}
	}
}

// stageProbe6 is stageProbe for a packet to an IPv6 destination (from a
// site, or an RTR's inner one) in frame b, from the header's bytes: the
// address's halves (pk.mkey, pk.mlo) and the flow memo's set in pk.fset6
// for a unicast destination that is not an IPv4-mapped address (those,
// multicast through netip.Addr.IsMulticast too, are left to probe);
// fset6 is 0 for any other, and valid for IPv6 packets only.
func (w *Worker) stageProbe6(pk *pktInfo, b []byte) {
	pk.fset6 = 0
	m := w.memo
	if m.v4 == nil || pk.iid > cacheMaxIID || len(b) < pk.innerOff+wire.IPv6Len {
		return
	}
	ip := (*[wire.IPv6Len]byte)(b[pk.innerOff:])
	m.flowKey6(pk, binary.BigEndian.Uint64(ip[24:]), binary.BigEndian.Uint64(ip[32:]))
}

// flowRun takes the packets of a batch from index j on through their
// lookup and last stages in one loop (encapRun), for as long as each is a
// flow memo hit still good (its next-hop memo entry filled as it was
// then, in the batch's snapshot) that encapRun takes, or a packet already
// done (dropped while parsing); it returns the index of the first packet it
// left, for lookupStage and the last stage. Such a run
// needs no entry, so nothing is gained by looking its packets up first; it
// is the usual batch of a steady flow mix, and one loop instead of two
// saves what the stages pass each other through pktInfo. The packets still
// leave in arrival order: the run is a prefix. It first prefetches the flow
// memo sets the parse stage found (pk.fset) for the whole rest of the
// batch, for the run and for lookupStage.
func (w *Worker) flowRun(pks []pktInfo, fs []ring.Frame, j int) int {
	if j >= len(pks) {
		return j
	}
	const stride = unsafe.Sizeof(pktInfo{})
	if m := w.memo; m.flows != nil {
		prefetchSets(unsafe.Pointer(unsafe.SliceData(m.flows)), unsafe.Pointer(&pks[j].fset), len(pks)-j, stride)
	}
	k, _ := w.encapRun(pks, fs, j, nil, runFlow)
	return k
}

// hopRun takes the packets of a batch from index j on, after lookupStage,
// for as long as each is a flow memo hit that lookupStage found (pk.hop)
// still good (pk.hop still holds serial pk.hser, in the batch's snapshot)
// that encapRun takes, or a packet already done; it returns the index of
// the first packet it left (j when it took none).
func (w *Worker) hopRun(pks []pktInfo, fs []ring.Frame, j int) int {
	k, _ := w.encapRun(pks, fs, j, nil, runHop)
	return k
}

// forwardAt is the last stage of batch packet j to forward (actForward),
// looked up by lookupStage, unless encapRun took it through a flow memo hit
// (the batch loops try that first: hopRun): encapFast through the RLOC the
// mapping selects, else the general forward. A packet encapFast sends
// teaches the flow memo its next-hop entry. A flow memo hit that hopRun did
// not take (the entry was filled again since, or the packet needs the
// general path)
// is looked up here as it would have been without the flow memo.
func (w *Worker) forwardAt(pk *pktInfo, fs []ring.Frame, j int) {
	f := &fs[j]
	if pk.hop != nil {
		pk.hop = nil
		lazyAddrs(pk, f)
		w.probe(pk)
	}
	w.choose(pk)
	out := w.encapFast(pk, f)
	if out >= 0 && pk.fset != 0 {
		i := hopIndexOf(pk.r)
		fillFlow(w.memo.flowAt(pk.fset), pk.mkey, pk.hash, uint16(i), w.hops[i].ser)
	} else if out >= 0 && !pk.v4 && pk.fset6 != 0 {
		i := hopIndexOf(pk.r)
		if x := w.memo.fillFlow6(pk, uint16(i), w.hops[i].ser); w.oe != 0 {
			w.offloadOfferAt(pk, x.bkt, &x.off, &w.hops[i]) // offered at once, as encap offers them (offer6)
		}
	} else if out >= 0 && (!pk.v4 || pk.rtr && !pk.outerV4) && w.oe != 0 {
		w.offer6(pk, &w.hops[hopIndexOf(pk.r)]) // as encap offers them; IPv4 over IPv6: coreInner
	}
	switch out {
	case encapDropped:
	case encapNo:
		w.endInPlace()
		w.forward(pk, f) // choose is idempotent; forward fills the lazy addresses
	default:
		if !w.ip.take(j, out) {
			w.sendAt(j, out, f)
		}
	}
}

// lazyAddrs fills pk.dst and pk.src from the inner IPv4 or IPv6 header in
// f when the parse stage left them out (pk.lazyAddrs).
func lazyAddrs(pk *pktInfo, f *ring.Frame) {
	if pk.lazyAddrs {
		lazyAddrsIn(pk, f.Bytes())
	}
}

// lazyAddrsIn is lazyAddrs for the frame whose bytes are b.
func lazyAddrsIn(pk *pktInfo, b []byte) {
	if pk.lazyAddrs {
		ip := b[pk.innerOff:]
		if pk.v4 {
			_ = ip[wire.IPv4MinLen-1]
			pk.dst = netip.AddrFrom4([4]byte(ip[16:20]))
			pk.src = netip.AddrFrom4([4]byte(ip[12:16]))
		} else {
			_ = ip[wire.IPv6Len-1]
			pk.dst = netip.AddrFrom16([16]byte(ip[24:40]))
			pk.src = netip.AddrFrom16([16]byte(ip[8:24]))
		}
		pk.lazyAddrs = false
	}
}

// flowL4 is the last word wire.FlowHash mixes for an IPv4 header without
// options: the protocol and, for a protocol with ports (portProto) in a
// packet that is not a fragment and has them, the two ports.
func flowL4(ip []byte, tl int) uint64 {
	_ = ip[wire.IPv4MinLen-1]
	proto := ip[9]
	if tl < wire.IPv4MinLen+4 || binary.BigEndian.Uint16(ip[6:])&(wire.IPv4FlagMF|0x1fff) != 0 || !portProto[proto] {
		return uint64(proto) << 32
	}
	return uint64(proto)<<32 | uint64(binary.BigEndian.Uint32(ip[wire.IPv4MinLen:]))
}

// flowHash6 is wire.FlowHash of the IPv6 packet ip (its header checked,
// h0 = wire.FlowStart(seed)), without the general function's version
// switch (TestFlowHash6MatchesWire): the addresses, then the next header
// and, for a protocol with ports in a packet that has them, the ports.
// Extension headers are not looked through, as wire.FlowHash does not.
func flowHash6(ip []byte, h0 uint64) uint32 {
	be := binary.BigEndian
	_ = ip[wire.IPv6Len-1]
	h := wire.FlowMix(wire.FlowMix(h0, be.Uint64(ip[8:])), be.Uint64(ip[16:]))
	h = wire.FlowMix(wire.FlowMix(h, be.Uint64(ip[24:])), be.Uint64(ip[32:]))
	proto := ip[6]
	l4 := uint64(proto) << 32
	if len(ip) >= wire.IPv6Len+4 && portProto[proto] {
		l4 |= uint64(be.Uint32(ip[wire.IPv6Len:]))
	}
	return wire.FlowFinish(wire.FlowMix(h, l4))
}

// portProto marks the protocols whose ports wire.FlowHash includes.
var portProto = [256]bool{wire.ProtoTCP: true, wire.ProtoUDP: true, wire.ProtoSCTP: true, wire.ProtoUDPLite: true}

// parseSite validates a frame from site port slot and fills pk, flow hash
// included; false when it dropped the frame.
func (w *Worker) parseSite(pk *pktInfo, slot int, f *ring.Frame) bool {
	b := f.Bytes()
	pk.slot, pk.innerOff, pk.iid, pk.rtr = slot, wire.EthernetLen, w.ports[slot].iid, false
	if len(b) >= wire.EthernetLen+wire.IPv4MinLen && b[12] == 0x08 && b[13] == 0x00 && b[14] == 0x45 {
		// The common case, an untagged IPv4 packet without options, without
		// going through the general parser.
		if r := parseIPv4NoOptions(pk, b[wire.EthernetLen:]); r != dropNone {
			w.drop(f, r)
			return false
		}
		pk.hash = wire.FlowHash(b[wire.EthernetLen:wire.EthernetLen+pk.innerLen], w.cfg.FlowSeed)
		return true
	}
	if len(b) >= wire.EthernetLen+wire.IPv6Len && b[12] == 0x86 && b[13] == 0xdd && b[14]>>4 == 6 {
		// An untagged IPv6 packet likewise: parseInner's checks
		// (wire.IPv6.Validate) and results, written out
		// (TestParseSite6MatchesGeneral).
		ip := (*[wire.IPv6Len]byte)(b[wire.EthernetLen:])
		n := wire.IPv6Len + int(binary.BigEndian.Uint16(ip[4:]))
		if n > len(b)-wire.EthernetLen {
			w.drop(f, DropBadLength)
			return false
		}
		pk.v4, pk.innerLen = false, n
		pk.dst = netip.AddrFrom16([16]byte(ip[24:40]))
		pk.src = netip.AddrFrom16([16]byte(ip[8:24]))
		pk.hash = flowHash6(b[wire.EthernetLen:wire.EthernetLen+n], w.flow0)
		return true
	}
	et, off, _, err := wire.Ethernet(b).Payload()
	if err != nil {
		w.drop(f, DropBadEthernet)
		return false
	}
	var ver uint8
	switch et {
	case wire.EtherTypeIPv4:
		ver = 4
	case wire.EtherTypeIPv6:
		ver = 6
	default:
		w.drop(f, DropBadEthernet)
		return false
	}
	pk.innerOff = off
	if r := w.parseInner(pk, b[off:], ver, true); r != dropNone {
		w.drop(f, r)
		return false
	}
	w.hashInner(pk, f)
	return true
}

// parseIPv4NoOptions is parseInner of a site packet (checksum verified)
// for an IPv4 header of 20 bytes (version and IHL already checked).
func parseIPv4NoOptions(pk *pktInfo, b []byte) DropReason {
	_ = b[wire.IPv4MinLen-1]
	tl := int(binary.BigEndian.Uint16(b[2:]))
	if tl < wire.IPv4MinLen {
		return DropBadIHL // header longer than the packet (wire.ErrIPHeaderLength)
	}
	if tl > len(b) {
		return DropBadLength
	}
	if !checksum20Valid(b) {
		return DropBadIP
	}
	pk.v4 = true
	pk.innerLen = tl
	pk.dst = netip.AddrFrom4([4]byte(b[16:20]))
	pk.src = netip.AddrFrom4([4]byte(b[12:16]))
	return dropNone
}

// checksumValid is ip.ChecksumValid for a validated IPv4 header, shorter
// for the usual 20 bytes.
func checksumValid(ip wire.IPv4) bool {
	if ip[0] == 0x45 {
		return checksum20Valid(ip)
	}
	return ip.ChecksumValid()
}

// checksum20Valid reports whether the 20-byte IPv4 header b verifies
// (RFC 1071 §1), as wire.IPv4.ChecksumValid does, in three adds of words
// loaded in the machine's order (TestChecksum20Valid). The one's-complement
// sum S of the header's 16-bit words folds to 0xffff exactly when S is a
// non-zero multiple of 0xffff. A word loaded little-endian is, modulo
// 0xffff, 256 times the big-endian one (2^16 ≡ 1, so each byte counts
// with 256 to the parity of its place), and 256 is prime to 0xffff: the
// little-endian sum is a multiple exactly when S is, and zero only for a
// header of zeros. The sum of two 64-bit words and a 32-bit one, each
// carry added back (2^64 ≡ 1 modulo 0xffff, which divides 2^64-1), keeps
// its value modulo 0xffff without a fold, and one remainder by a constant
// ends it.
func checksum20Valid(b []byte) bool {
	_ = b[19]
	le := binary.LittleEndian
	s, c := bits.Add64(le.Uint64(b[0:]), le.Uint64(b[8:]), 0)
	s, c = bits.Add64(s, uint64(le.Uint32(b[16:])), c)
	s += c // no carry: a carry out of the last add leaves s below 2^32
	return s != 0 && s%0xffff == 0
}

// hashInner sets pk.hash to the flow hash of the inner packet in f.
func (w *Worker) hashInner(pk *pktInfo, f *ring.Frame) {
	pk.hash = wire.FlowHash(f.Bytes()[pk.innerOff:pk.innerOff+pk.innerLen], w.cfg.FlowSeed)
}

// lookup looks the unicast destination of pk up (through the memo) into
// pk.e and pk.found and, for a positive mapping, selects the RLOC of the
// packet's flow (pk.hash) into pk.r (nil when none is usable). Multicast
// destinations are looked up by replicate.
func (w *Worker) lookup(pk *pktInfo) {
	w.probe(pk)
	w.choose(pk)
}

// lookupStage is the first half of the lookup of a batch's packets that
// need one (actForward): probe them all, so that the entries' loads
// overlap; the last stage (forwardAt) chooses just before it forwards. It
// comes after flowRun, which prefetched the flow memo sets the parse stage
// found (pk.fset), and ends by prefetching the entries found (pk.e) in one
// call for the whole batch: a call per packet made its loop spill and
// reload its registers around every call. A flow memo hit (pk.hop) needs
// no entry.
func (w *Worker) lookupStage(pks []pktInfo, fs []ring.Frame) {
	if len(pks) == 0 {
		return
	}
	const stride = unsafe.Sizeof(pktInfo{})
	m := w.memo
	for j := range pks {
		pk := &pks[j]
		if pk.act != actForward {
			continue
		}
		pk.hop = nil
		if !pk.v4 && pk.fset6 != 0 {
			// An IPv6 flow: its flow memo hit (hopRun sends it), unless
			// the kernel offload's epoch moved on since it was offered
			// (forwardAt offers it again as it fills the slot anew);
			// else probe.
			if x := m.flow6Hit(pk); x != nil && x.off == w.oet {
				pk.hop, pk.hser = &w.hops[x.hop&(hopSlots-1)], x.ser
				pk.e, pk.found, pk.r = nil, false, nil
				continue
			}
			lazyAddrs(pk, &fs[j])
			w.probe(pk)
			continue
		}
		// A hit in the first way of the flow memo's set (the most recent
		// flow of its set) or in a later one; else a hit in the first way
		// of the memo4 set (the common case: the most recent destination
		// of its set) without the call into the memo, in a later way
		// through hitLater; a miss goes through probe.
		if pk.fset != 0 {
			fl := m.flowAt(pk.fset)
			x := &fl[0]
			if x.key != pk.mkey || x.bkt != cache.SelectBucket(pk.hash) {
				x = flowLater(fl, pk.mkey, pk.hash)
			}
			if x != nil {
				pk.hop, pk.hser = &w.hops[x.hop&(hopSlots-1)], x.ser
				pk.e, pk.found, pk.r = nil, false, nil
				continue
			}
			s := m.set4(pk.mkey)
			if s[0].key == pk.mkey {
				m.hits++
				pk.e, pk.found, pk.r = s[0].e, true, nil
				continue
			}
			if e, ok := m.hitLater(s, pk.mkey); ok { // a later way, without the addresses
				pk.e, pk.found, pk.r = e, true, nil
				continue
			}
		}
		lazyAddrs(pk, &fs[j])
		w.probe(pk)
	}
	// pk.e of a packet not looked up (not actForward, or a miss) may be
	// one of an earlier batch: prefetching it is harmless.
	prefetchEach(unsafe.Pointer(&pks[0].e), len(pks), stride)
}

// stageProbe prepares the probe stage of a batch's IPv4 packet to look
// up: for a unicast destination the memo holds, the memo key and the flow
// memo's set (flowRun prefetches the set; flowRun or lookupStage checks
// it, then lookupStage the first way of the memo4 set). An IPv6 packet's
// is stageProbe6.
func (w *Worker) stageProbe(pk *pktInfo) {
	m := w.memo
	if m.v4 == nil || pk.iid > cacheMaxIID || !pk.dst.Is4() {
		return
	}
	m.flowKey4(pk, pk.dst.As4())
}

// stageProbeCore is stageProbe (stageProbe6 for an inner IPv6 packet)
// for a core packet to forward (RTR) whose frame holds b: an inner IPv4
// destination is read from the frame. coreInner calls it for its general
// case (its common case calls flowKey4 itself), so the fields are ready
// for the batch's flowRun and lookupStage.
func (w *Worker) stageProbeCore(pk *pktInfo, b []byte) {
	if !pk.v4 {
		w.stageProbe6(pk, b)
		return
	}
	m := w.memo
	if m.v4 == nil || pk.iid > cacheMaxIID || len(b) < pk.innerOff+wire.IPv4MinLen {
		w.stageProbe(pk)
		return
	}
	m.flowKey4(pk, [4]byte(b[pk.innerOff+16:pk.innerOff+20]))
}

// probe is the first half of lookup: the memo's (or the cache's) answer
// into pk.e and pk.found, and a prefetch of the entry that choose reads.
func (w *Worker) probe(pk *pktInfo) {
	pk.e, pk.found, pk.r = nil, false, nil
	if pk.dst.IsMulticast() {
		return
	}
	pk.e, pk.found = w.memo.probe(pk.iid, pk.dst)
	if pk.found {
		prefetch(unsafe.Pointer(pk.e))
	}
}

// choose is the second half of lookup: it selects the RLOC of a positive
// entry.
func (w *Worker) choose(pk *pktInfo) {
	if !pk.found {
		return
	}
	e := pk.e
	if !e.Negative() {
		pk.r = e.Select(pk.hash)
	}
}

// forward encapsulates the packet to the RLOC its mapping selected (pk.r,
// by lookup), applies the negative action, or holds the packet on a miss.
// pk describes the packet; nothing in it has been modified yet.
func (w *Worker) forward(pk *pktInfo, f *ring.Frame) {
	lazyAddrs(pk, f)
	if pk.dst.IsMulticast() {
		w.replicate(pk, f)
		return
	}
	e := pk.e
	if !pk.found {
		w.miss(pk, f)
		return
	}
	if !e.Negative() {
		r := pk.r
		if r == nil {
			w.drop(f, DropNoRoute) // every RLOC down or priority 255
			return
		}
		w.encap(pk, f, r)
		return
	}
	switch e.Action() {
	case wire.ActionSendMapRequest:
		w.miss(pk, f)
	case wire.ActionNoAction, wire.ActionNativelyForward:
		if !pk.rtr {
			if r := w.ports[pk.slot].petr; r != nil {
				w.encap(pk, f, r)
				return
			}
		}
		w.native(pk, f)
	default:
		w.drop(f, DropNegative)
	}
}

// miss holds a copy of the packet until the slow path resolves the
// destination (HoldQueue.Hold also queues the MissEvent).
func (w *Worker) miss(pk *pktInfo, f *ring.Frame) {
	w.c.Inc(CounterMiss)
	w.hold.Hold(w.now, pk.iid, pk.dst, pk.src, uint32(pk.slot), f.Bytes())
	w.free(f)
}

// prepareInner applies the forwarding rules to the inner header before the
// packet leaves: for a re-encapsulated packet the decapsulation rules first
// (TTL = min(outer, inner), ECN by RFC 6040 §4.2), then the router's own
// TTL / hop-limit decrement. It reports false when the packet was dropped.
func (w *Worker) prepareInner(pk *pktInfo, f *ring.Frame) bool {
	inner := f.Bytes()[pk.innerOff : pk.innerOff+pk.innerLen]
	if pk.rtr && !w.decapRules(pk, f, inner) {
		return false
	}
	if pk.v4 {
		ttl := inner[8]
		if ttl <= 1 {
			w.drop(f, DropTTLExpired)
			return false
		}
		decTTL4(inner, ttl-1)
		return true
	}
	if inner[7] <= 1 {
		w.drop(f, DropTTLExpired)
		return false
	}
	inner[7]--
	return true
}

// decapRules applies RFC 9300 §5.3 / RFC 6040 §4.2 to the inner header from
// the outer TTL and TOS in pk; false when the packet was dropped.
func (w *Worker) decapRules(pk *pktInfo, f *ring.Frame, inner []byte) bool {
	if pk.outerTOS&3 == wire.ECNNotECT {
		// The common case in short: under a Not-ECT outer header every row
		// of the RFC 6040 §4.2 table forwards with the inner ECN field as it
		// is, so only the TTL (hop limit) rule is left
		// (wire.InnerTTLAndECN; TestDecapRulesShortcut).
		if pk.v4 && len(inner) >= wire.IPv4MinLen {
			if pk.outerTTL < inner[8] {
				setTTL4(inner, pk.outerTTL)
			}
			return true
		}
		if !pk.v4 && len(inner) >= wire.IPv6Len {
			inner[7] = min(inner[7], pk.outerTTL)
			return true
		}
	}
	d, err := wire.ApplyDecap(inner, pk.outerTTL, pk.outerTOS)
	switch {
	case err != nil:
		w.drop(f, DropBadIP)
		return false
	case d == wire.ECNDrop:
		// No DropReason exists for this yet: counted as ExtraECNDrop only.
		w.extra[ExtraECNDrop]++
		w.free(f)
		return false
	case d == wire.ECNForwardAlarm:
		w.extra[ExtraECNAlarm]++
	}
	return true
}

// setTTL4 sets the TTL of the IPv4 header ip and updates its checksum
// incrementally (RFC 1624). The new TTL/protocol word is computed, not
// read back after the TTL store: a 2-byte load of a 1-byte store cannot be
// forwarded from the store buffer and stalls (4 % of a decap in a profile).
func setTTL4(ip []byte, ttl uint8) {
	x := binary.BigEndian.Uint32(ip[8:]) // TTL, protocol, checksum in one load
	cs := wire.ChecksumUpdate(uint16(x), uint16(x>>16), uint16(ttl)<<8|uint16(x>>16)&0xff)
	ip[8] = ttl
	binary.BigEndian.PutUint16(ip[10:], cs)
}

// decTTL4 is setTTL4(ip, ttl) where ttl is one less than ip's TTL (at
// least 1): lowerTTL4 with the drop known to be 1.
func decTTL4(ip []byte, ttl uint8) {
	_ = ip[wire.IPv4MinLen-1]
	cs := csumLowerTTL(binary.BigEndian.Uint16(ip[10:]), 1)
	ip[8] = ttl
	binary.BigEndian.PutUint16(ip[10:], cs)
}

// csumLowerTTL is wire.ChecksumUpdate(hc, m, m-d<<8): the IPv4 header
// checksum hc after the TTL/protocol word m loses d from its TTL (which was
// at least d). In RFC 1624 eqn. 3, ~m + (m - d<<8) is 0xffff - d<<8
// whatever m is, so the sum is ~hc + 0xffff - d<<8, and one fold ends it:
// at most 0x1fefe folds to at most 0xfeff (TestCsumDecTTL).
func csumLowerTTL(hc uint16, d uint8) uint16 {
	s := uint32(^hc) + 0xffff - uint32(d)<<8
	return ^uint16(s&0xffff + s>>16)
}

// lowerTTL4 is setTTL4(ip, ttl) where ttl is at most ip's TTL: the same
// bytes in fewer steps (csumLowerTTL).
func lowerTTL4(ip []byte, ttl uint8) {
	_ = ip[wire.IPv4MinLen-1]
	cs := csumLowerTTL(binary.BigEndian.Uint16(ip[10:]), ip[8]-ttl)
	ip[8] = ttl
	binary.BigEndian.PutUint16(ip[10:], cs)
}

// outerHop resolves the next hop of dst, a packet's destination in the
// underlay (a replica's RLOC, a natively forwarded packet's destination):
// the egress port slot, the adjacency and its status. It returns slot -1
// (having dropped f) when the packet cannot leave. The next hop comes from
// the worker's memo of deliveries, which holds next hops by destination
// alone: kept across snapshots that resolve it alike, and noted as used
// for the kernel's neighbour table (noteUsed).
func (w *Worker) outerHop(f *ring.Frame, dst netip.Addr, adj *nexthop.Adjacency) (int, nexthop.AdjStatus) {
	h := w.hop(dst, nil)
	a, st := h.adj, h.st
	*adj = a
	switch st {
	case nexthop.AdjNoRoute:
		w.drop(f, DropNoRoute)
		return -1, st
	case nexthop.AdjKernel, nexthop.AdjIncomplete:
		return -1, st
	}
	if h.out < 0 {
		w.drop(f, DropNoPort)
	}
	return h.out, st
}

// pathMTU is the largest outer IP packet port out may send.
func (w *Worker) pathMTU(out int, adj *nexthop.Adjacency) int {
	if out >= 0 {
		if m := w.ports[out].mtu; m > 0 {
			return m
		}
	}
	if adj.MTU > 0 {
		return int(adj.MTU)
	}
	return 1500
}

// encap encapsulates the packet described by pk to RLOC r and queues it.
// The RLOC's next hop comes from the worker's memo (hop).
func (w *Worker) encap(pk *pktInfo, f *ring.Frame, r *cache.RLOC) {
	tpl := r.Template
	if len(tpl) < wire.OuterIPv4Len {
		w.drop(f, DropNoRoute) // no local RLOC of the RLOC's family
		return
	}
	h := w.hop(r.Addr, r)
	switch {
	case h.st == nexthop.AdjNoRoute:
		w.drop(f, DropNoRoute)
		return
	case h.st == nexthop.AdjResolved && h.out < 0:
		w.drop(f, DropNoPort)
		return
	}
	if !w.prepareInner(pk, f) {
		return
	}
	if len(tpl)+pk.innerLen > h.mtu {
		w.tooBig(pk, f, tpl, &h.adj, h.st, h.out, h.mtu)
		return
	}
	if h.hlen == 0 { // not resolved: to the kernel (l2out)
		w.writeOuter(pk, f, pk.innerOff, pk.innerLen, tpl, &h.adj, h.st, h.out)
		return
	}
	if (!pk.v4 || pk.rtr && !pk.outerV4) && w.oe != 0 {
		w.offer6(pk, h) // other IPv4 flows are offered from the flow memo (encapLoop)
	}
	w.encapHop(pk, f, h)
}

// writeOuter turns f, whose inner IP packet of innerLen bytes starts at
// innerOff, into Ethernet + template + inner (buildOuter) and sends it.
func (w *Worker) writeOuter(pk *pktInfo, f *ring.Frame, innerOff, innerLen int, tpl []byte, adj *nexthop.Adjacency, st nexthop.AdjStatus, out int) {
	if w.buildOuter(pk, f, innerOff, innerLen, tpl) {
		w.l2out(f, adj, st, out, outerEtherType(tpl))
	}
}

// outerEtherType is the EtherType of the outer header template tpl.
func outerEtherType(tpl []byte) uint16 {
	if tpl[0]>>4 == 4 {
		return wire.EtherTypeIPv4
	}
	return wire.EtherTypeIPv6
}

// buildOuter turns f, whose inner IP packet of innerLen bytes starts at
// innerOff, into Ethernet + template + inner (the payload does not move:
// the front grows into the headroom or shrinks) and patches the template.
// It counts the encapsulation and reports false when it dropped f.
func (w *Worker) buildOuter(pk *pktInfo, f *ring.Frame, innerOff, innerLen int, tpl []byte) bool {
	b := w.front(f, innerOff, innerLen, wire.EthernetLen+len(tpl))
	if b == nil {
		return false
	}
	copy(b[wire.EthernetLen:], tpl)
	return w.patchOuter(pk, f, b[wire.EthernetLen:])
}

// front makes f, whose inner IP packet of innerLen bytes starts at
// innerOff, start hlen bytes before that packet (the payload does not move:
// the front grows into the headroom or shrinks; Ethernet padding is cut)
// and returns its bytes; nil when it dropped f.
func (w *Worker) front(f *ring.Frame, innerOff, innerLen, hlen int) []byte {
	f.SetLen(innerOff + innerLen)
	if d := innerOff - hlen; d >= 0 {
		f.Pull(d)
	} else if f.Push(-d) == nil {
		w.drop(f, DropBadLength) // a frame without the ring's headroom
		return nil
	}
	return f.Bytes()
}

// patchOuter writes the per-packet fields of the outer headers whose
// template was copied to the start of ob (the outer IP packet), and counts
// the encapsulation; false when it dropped f.
func (w *Worker) patchOuter(pk *pktInfo, f *ring.Frame, ob []byte) bool {
	w.ep.FlowHash = pk.hash
	w.ep.Nonce = w.nonce()
	w.ep.LSBs = w.lsbs
	w.ep.ID = w.ipid
	w.ipid++
	var err error
	if len(ob) > 0 && ob[0]>>4 == 4 {
		err = wire.PatchOuterIPv4(ob, &w.ep) // the common case, without PatchOuter's dispatch
	} else {
		err = wire.PatchOuter(ob, &w.ep)
	}
	if err != nil {
		w.drop(f, DropBadLength)
		return false
	}
	if pk.rtr {
		w.c.Inc(CounterReencap)
	} else {
		w.c.Inc(CounterEncap)
	}
	return true
}

// l2out writes the Ethernet header of adj and sends f on port out; for an
// unresolved next hop it hands the IP packet to the kernel instead.
func (w *Worker) l2out(f *ring.Frame, adj *nexthop.Adjacency, st nexthop.AdjStatus, out int, et uint16) {
	b := f.Bytes()
	if st != nexthop.AdjResolved {
		if w.cfg.ToKernel != nil && w.cfg.ToKernel(b[wire.EthernetLen:]) {
			w.c.Inc(CounterToKernel)
			w.free(f)
			return
		}
		if st == nexthop.AdjKernel {
			w.drop(f, DropNoPort)
		} else {
			w.drop(f, DropNoNeighbour)
		}
		return
	}
	putEthernet(b, adj, et)
	w.send(out, f)
}

// native forwards the inner packet unencapsulated (negative mapping with
// no-action or natively-forward, RFC 9301 §5.4): out of the port and to the
// next hop the next-hop table gives for the inner destination, TTL
// decremented.
func (w *Worker) native(pk *pktInfo, f *ring.Frame) {
	var adj nexthop.Adjacency
	out, st := w.outerHop(f, pk.dst, &adj)
	if out < 0 && st == nexthop.AdjResolved || st == nexthop.AdjNoRoute {
		return
	}
	if !w.prepareInner(pk, f) {
		return
	}
	f.SetLen(pk.innerOff + pk.innerLen)
	f.Pull(pk.innerOff - wire.EthernetLen)
	et := wire.EtherTypeIPv6
	if pk.v4 {
		et = wire.EtherTypeIPv4
	}
	w.l2out(f, &adj, st, out, et)
}

// tooBig handles an inner packet that does not fit the path MTU L once
// encapsulated (RFC 9300 §7.1, the stateless solution). An IPv4 packet with
// DF clear is encapsulated and the outer IPv4 packet is split into two
// fragments that the ETR reassembles (fragmentOuter). Behind an IPv6 outer
// header the inner IPv4 packet is fragmented instead and each fragment
// encapsulated on its own (fragmentInner): an IPv6 outer Fragment header
// would make every ETR look through IPv6 extension headers, while inner
// fragments are what any IPv4 router may produce for a DF-clear packet and
// need no reassembly on the way. An IPv4 packet with DF set or an IPv6
// packet is dropped and, for packets from a site, an ICMP "fragmentation
// needed" / ICMPv6 "packet too big" with MTU L-H goes back to the source
// out of the ingress port (rate-limited).
func (w *Worker) tooBig(pk *pktInfo, f *ring.Frame, tpl []byte, adj *nexthop.Adjacency, st nexthop.AdjStatus, out, mtu int) {
	inner := f.Bytes()[pk.innerOff : pk.innerOff+pk.innerLen]
	if pk.v4 && !wire.IPv4(inner).DontFragment() {
		if tpl[0]>>4 == 4 {
			w.fragmentOuter(pk, f, tpl, adj, st, out, mtu)
		} else {
			w.fragmentInner(pk, f, tpl, adj, st, out, mtu)
		}
		return
	}
	if !pk.rtr {
		w.sendTooBig(pk, f, mtu-len(tpl))
	}
	w.drop(f, DropMTUExceeded)
}

// fragmentOuter encapsulates the packet of f and splits the outer IPv4
// packet into two fragments of at most mtu bytes (RFC 791 §3.2): the first,
// with MF set, carries the outer UDP and LISP headers and the largest
// multiple of 8 payload bytes that fits; the second, in a fresh frame,
// carries the rest at fragment offset first/8. Both have DF clear, the
// per-worker identification buildOuter wrote and their own header
// checksum. A packet that two fragments cannot carry is dropped as
// DropMTUExceeded.
func (w *Worker) fragmentOuter(pk *pktInfo, f *ring.Frame, tpl []byte, adj *nexthop.Adjacency, st nexthop.AdjStatus, out, mtu int) {
	hl := len(tpl) - wire.UDPLen - wire.HeaderLen // outer IPv4 header (20)
	payload := len(tpl) - hl + pk.innerLen        // UDP + LISP + inner
	first := (mtu - hl) &^ 7
	if first <= len(tpl)-hl || first >= payload || payload-first > mtu-hl {
		w.drop(f, DropMTUExceeded)
		return
	}
	var g ring.Frame
	slot := out
	if slot < 0 {
		slot = pk.slot
	}
	if !w.alloc(slot, &g) {
		w.drop(f, DropMTUExceeded)
		return
	}
	n2 := wire.EthernetLen + hl + payload - first
	if !g.SetLen(n2) {
		w.free(&g)
		w.drop(f, DropMTUExceeded)
		return
	}
	if !w.buildOuter(pk, f, pk.innerOff, pk.innerLen, tpl) {
		w.free(&g)
		return
	}
	b := f.Bytes()
	gb := g.Bytes()
	copy(gb[wire.EthernetLen:], b[wire.EthernetLen:wire.EthernetLen+hl])
	copy(gb[wire.EthernetLen+hl:], b[wire.EthernetLen+hl+first:])
	ip2 := wire.IPv4(gb[wire.EthernetLen:])
	ip2.SetTotalLength(uint16(hl + payload - first))
	ip2.SetFlagsFragment(uint16(first / 8))
	ip2.UpdateChecksum()
	f.SetLen(wire.EthernetLen + hl + first)
	ip := wire.IPv4(b[wire.EthernetLen:])
	ip.SetTotalLength(uint16(hl + first))
	ip.SetFlagsFragment(wire.IPv4FlagMF)
	ip.UpdateChecksum()
	w.extra[ExtraFragmented]++
	w.l2out(f, adj, st, out, wire.EtherTypeIPv4)
	w.l2out(&g, adj, st, out, wire.EtherTypeIPv4)
}

// fragmentInner splits the inner IPv4 packet of f in two (RFC 791 §3.2: the
// first fragment's payload a multiple of 8 bytes), the second in a fresh
// frame, and encapsulates both to the same RLOC with the same flow hash.
// Options are copied into both fragments. A packet that two fragments
// cannot carry is dropped as DropMTUExceeded.
func (w *Worker) fragmentInner(pk *pktInfo, f *ring.Frame, tpl []byte, adj *nexthop.Adjacency, st nexthop.AdjStatus, out, mtu int) {
	inner := f.Bytes()[pk.innerOff : pk.innerOff+pk.innerLen]
	ip := wire.IPv4(inner)
	hl := ip.HeaderLength()
	payload := pk.innerLen - hl
	first := (payload/2 + 7) &^ 7
	room := mtu - len(tpl)
	if first == 0 || first >= payload || hl+first > room || hl+payload-first > room {
		w.drop(f, DropMTUExceeded)
		return
	}
	var g ring.Frame
	slot := out
	if slot < 0 {
		slot = pk.slot
	}
	if !w.alloc(slot, &g) {
		w.drop(f, DropMTUExceeded)
		return
	}
	n2 := hl + payload - first
	if g.Headroom() < wire.EthernetLen+len(tpl) || !g.SetLen(n2) {
		w.free(&g)
		w.drop(f, DropMTUExceeded)
		return
	}
	gb := g.Bytes()
	copy(gb, inner[:hl])
	copy(gb[hl:], inner[hl+first:])
	ff := ip.FlagsFragment()
	off := ff & 0x1fff
	g2 := wire.IPv4(gb)
	g2.SetTotalLength(uint16(n2))
	g2.SetFlagsFragment(ff&wire.IPv4FlagMF | (off + uint16(first/8)))
	g2.UpdateChecksum()
	ip.SetTotalLength(uint16(hl + first))
	ip.SetFlagsFragment(wire.IPv4FlagMF | off)
	ip.UpdateChecksum()
	w.extra[ExtraFragmented]++
	w.writeOuter(pk, f, pk.innerOff, hl+first, tpl, adj, st, out)
	w.writeOuter(pk, &g, 0, n2, tpl, adj, st, out)
}
