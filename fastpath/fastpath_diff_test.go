package fastpath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// TestBatchMatchesGeneral compares the batch path (Step: the fused IPv4
// parse stage, the memo probe written out in lookupStage, encapFast for
// site and RTR packets) with the general path run on the same frames one at
// a time (parseSite / parseCore, lookup, forward) in a twin worker: the same
// frames leave on the same ports with the same bytes, and every counter
// agrees. The frames vary what the shortcuts test: inner TTL (0, 1, 2,
// more), outer TTL against the inner one, outer and inner TOS (ECN
// combinations), DF, sizes around the path MTU, IPv4 and IPv6 outer
// templates, LISP frames over either underlay, IPv6 inner packets, misses, multicast and instance-IDs the
// RTR re-encapsulates or the ETR delivers. It fails when a shortcut takes a
// packet the general path treats differently or writes a byte otherwise.
func TestBatchMatchesGeneral(t *testing.T) {
	batchVsGeneral(t, 11)
}

// TestBatchMatchesGeneralOuters is TestBatchMatchesGeneral under the
// other outer-header options, which change what the templates hold and
// what encapFast may write itself (encapLoop's patches): no nonce, LSBs,
// DF, and a UDP checksum (which they leave to the general patch).
func TestBatchMatchesGeneralOuters(t *testing.T) {
	for i, o := range []OuterConfig{
		{LSBs: true, LSBValue: 0x1a5},
		{Nonce: true, LSBs: true, LSBValue: 3, DontFragment: true},
		{Nonce: true, UDPChecksum: true},
	} {
		t.Run(fmt.Sprintf("outer%d", i), func(t *testing.T) {
			batchVsGeneral(t, uint64(20+i), func(c *Config) {
				o.RLOC4, o.RLOC6 = c.Outer.RLOC4, c.Outer.RLOC6
				c.Outer = o
			})
		})
	}
}

// batchVsGeneral runs TestBatchMatchesGeneral's random batches through
// twins made with the extra configuration mods.
func batchVsGeneral(t *testing.T, seed uint64, mods ...func(*Config)) {
	batch, general := newTwins(t, mods...)
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	pick := func(xs ...int) int { return xs[rnd.IntN(len(xs))] }
	dsts4 := []netip.Addr{remote4, remote4v6, netip.MustParseAddr("10.4.1.1"), netip.MustParseAddr("10.4.2.9"),
		netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("239.1.2.3")}
	inner := func(toSite bool) innerSpec {
		s := innerSpec{src: hostA, ttl: uint8(pick(1, 2, 3, 64, 255)), tos: uint8(rnd.Uint32()),
			df: rnd.IntN(2) == 0, sport: uint16(rnd.Uint32()), payload: pick(0, 18, 100, 1400, 1430, 1452, 1472)}
		if rnd.IntN(6) == 0 { // an IPv6 EID behind an IPv4 or an IPv6 RLOC
			s.src, s.dst = hostA6, []netip.Addr{remote6, remote6v6}[rnd.IntN(2)]
			s.payload = min(s.payload, 1400)
		} else {
			s.dst = dsts4[rnd.IntN(len(dsts4))]
		}
		if toSite { // delivered by the ETR: from a remote EID to a site host
			s.src, s.dst = s.dst, s.src
		}
		return s
	}
	frame := func() (b []byte, core bool) {
		if rnd.IntN(2) == 0 {
			return siteFrame(t, inner(false)), false
		}
		iid := uint32(pick(300, 300, iidSite))
		in := innerPacket(t, inner(iid == iidSite))
		ls := lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iid, nonce: rnd.Uint32() & 0xffffff,
			ttl: uint8(pick(1, 2, 3, 60, 255)), tos: uint8(rnd.Uint32()), inner: in}
		if rnd.IntN(3) == 0 { // over the IPv6 underlay
			ls.src, ls.dst = rlocRemote6, rlocLocal6
		}
		return lispFrame(t, ls), true
	}
	frames := 0
	for round := range 40 {
		var bs [][]byte
		var cores []bool
		for range 1 + rnd.IntN(ring.IdealBatchSize) {
			b, core := frame()
			bs, cores = append(bs, b), append(cores, core)
		}
		runTwins(t, batch, general, bs, cores, round)
		frames += len(bs)
	}
	var c Counters
	batch.w.Counters().Snapshot(&c)
	if c.Get(CounterEncap) == 0 || c.Get(CounterReencap) == 0 || c.Get(CounterDecap) == 0 || c.Dropped(DropTTLExpired) == 0 ||
		c.Get(CounterMiss) == 0 || batch.w.Extra(ExtraFragmented) == 0 || batch.w.Extra(ExtraMemoHit) == 0 ||
		batch.w.Extra(ExtraFlowHit) == 0 {
		t.Fatalf("%d frames did not exercise every path: %v, fragmented %d, memo hits %d, flow memo hits %d", frames, c,
			batch.w.Extra(ExtraFragmented), batch.w.Extra(ExtraMemoHit), batch.w.Extra(ExtraFlowHit))
	}
}

// TestLowerTTL4TwoSteps: lowerTTL4 to one below t writes exactly what the
// general path's two steps write (decapRules' setTTL4 to the outer TTL t,
// then the decrement), for every such t over headers with random checksums
// and protocols (the one's-complement edge cases included).
func TestLowerTTL4TwoSteps(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		h := make([]byte, 20)
		for i := range h {
			h[i] = byte(rnd.Uint32())
		}
		if rnd.IntN(8) == 0 {
			h[9], h[10], h[11] = 0xff, 0xff, 0xff
		}
		if h[8] < 2 {
			h[8] = 2
		}
		t1 := uint8(2 + rnd.UintN(uint(h[8])-1)) // 2 ..= the TTL
		a, b := append([]byte(nil), h...), append([]byte(nil), h...)
		setTTL4(a, t1)
		setTTL4(a, t1-1)
		lowerTTL4(b, t1-1)
		if !bytes.Equal(a, b) {
			t.Fatalf("header %x, TTL %d then %d: lowerTTL4 %x, setTTL4 twice %x", h, t1, t1-1, b, a)
		}
	}
}

// newTwins returns two identical workers (RTR on, ICMP errors never
// suppressed by timing, extra mappings in instance-ID 300 and a
// two-RLOC prefix) for comparing the batch path with the general one.
func newTwins(t testing.TB, mods ...func(*Config)) (batch, general *rig) {
	mod := func(c *Config) {
		c.RTR = true
		c.ICMPRate, c.ICMPBurst = 1_000_000, 1_000_000               // no ICMP suppressed by timing
		c.Hold.HoldTime, c.Hold.RetryInterval = time.Hour, time.Hour // nor held packets dropped or misses retried
		for _, m := range mods {
			m(c)
		}
	}
	batch, general = newRig(t, mod), newRig(t, mod)
	for _, r := range []*rig{batch, general} {
		r.install([]StaticMapping{
			{IID: 300, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
			{IID: 300, Prefix: netip.MustParsePrefix("10.3.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote6, Weight: 1}}},
			{IID: 300, Prefix: netip.MustParsePrefix("2001:db8:2::/48"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
			{IID: 300, Prefix: netip.MustParsePrefix("2001:db8:3::/48"), RLOCs: []StaticRLOC{{Addr: rlocRemote6, Weight: 1}}},
			{IID: iidSite, Prefix: netip.MustParsePrefix("10.4.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}, {Addr: rlocOther4, Weight: 1}}},
		})
	}
	return batch, general
}

// runTwins sends frames bs (cores[i]: on the core port, else the site's)
// through batch in one Step and through general one by one on the general
// path (fromSite / fromCore), site frames first as Step polls the site port
// first, and fails unless the same frames leave both on the same ports and
// every counter but RX agrees.
func runTwins(t testing.TB, batch, general *rig, bs [][]byte, cores []bool, round int) {
	t.Helper()
	for i, b := range bs {
		p := batch.site
		if cores[i] {
			p = batch.core
		}
		if !p.Inject(b) {
			t.Fatal("inject failed")
		}
	}
	batch.w.Step()
	for _, core := range []bool{false, true} {
		for i, b := range bs {
			if cores[i] != core {
				continue
			}
			slot := 0
			if core {
				slot = 1
			}
			var f ring.Frame
			if !general.w.alloc(slot, &f) || !f.SetLen(len(b)) {
				t.Fatal("no frame for the general twin")
			}
			copy(f.Bytes(), b)
			if core {
				general.w.fromCore(slot, &f)
			} else {
				general.w.fromSite(slot, &f)
			}
		}
	}
	general.w.Step() // flushes, publishes the counters
	for _, side := range []string{"site", "core"} {
		p1, p2 := batch.site, general.site
		if side == "core" {
			p1, p2 = batch.core, general.core
		}
		o1, o2 := drain(p1), drain(p2)
		if len(o1) != len(o2) {
			t.Fatalf("round %d: %d frames out of the %s port in a batch, %d one by one", round, len(o1), side, len(o2))
		}
		for i := range o1 {
			if !bytes.Equal(o1[i], o2[i]) {
				t.Fatalf("round %d: %s frame %d differs:\nbatch   %x\ngeneral %x", round, side, i, o1[i], o2[i])
			}
		}
	}
	c1, c2 := batch.counters(), general.counters()
	c1.v[CounterRX], c2.v[CounterRX] = 0, 0 // the general twin's frames were not received
	// Partial reassemblies time out by each twin's own clock (2 s).
	frag := int(numEventCounters) + int(DropFragment)
	c1.v[frag], c2.v[frag] = 0, 0
	if c1 != c2 {
		t.Fatalf("round %d: counters differ:\nbatch   %v\ngeneral %v", round, c1, c2)
	}
}

// FuzzBatchMatchesGeneral is TestBatchMatchesGeneral for arbitrary frames:
// one frame, or the frame followed by a copy with one byte changed, on the
// site or the core port.
func FuzzBatchMatchesGeneral(f *testing.F) {
	in := innerPacket(f, innerSpec{src: remote4, dst: hostA, payload: 20})
	f.Add(siteFrame(f, innerSpec{src: hostA, dst: remote4, payload: 20}), false, uint16(0), byte(0))
	f.Add(siteFrame(f, innerSpec{src: hostA, dst: remote4v6, ttl: 2, payload: 1450}), false, uint16(22), byte(1))
	f.Add(siteFrame(f, innerSpec{src: hostA6, dst: remote6, payload: 20}), false, uint16(0), byte(0))
	f.Add(lispFrame(f, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in}), true, uint16(23), byte(3))
	f.Add(lispFrame(f, lispSpec{src: rlocRemote6, dst: rlocLocal6, iid: iidSite, inner: in}), true, uint16(59), byte(0x40))
	f.Add(lispFrame(f, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, ttl: 5, tos: 2,
		inner: innerPacket(f, innerSpec{src: hostA, dst: remote4, payload: 20})}), true, uint16(15), byte(0x10))
	batch, general := newTwins(f)
	round := 0
	f.Fuzz(func(t *testing.T, b []byte, core bool, at uint16, x byte) {
		if len(b) == 0 || len(b) > 1700 {
			return
		}
		bs, cores := [][]byte{b}, []bool{core}
		if x != 0 {
			b2 := append([]byte(nil), b...)
			b2[int(at)%len(b2)] ^= x
			bs, cores = append(bs, b2), append(cores, core)
		}
		round++
		runTwins(t, batch, general, bs, cores, round)
	})
}

// TestChecksum20Valid: checksum20Valid agrees with wire.Checksum (RFC 1071)
// on random 20-byte headers, on the same headers with their checksum made
// right, on headers of mostly 0xff and 0x00 bytes (whose 64-bit sums carry
// out), and on the all-zero and all-ones headers; setTTL4 keeps a right
// checksum right.
func TestChecksum20Valid(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	check := func(h []byte) {
		t.Helper()
		if got, want := checksum20Valid(h), wire.Checksum(h, 0) == 0xffff; got != want {
			t.Fatalf("header %x: checksum20Valid %v, wire.Checksum says %v", h, got, want)
		}
	}
	check(make([]byte, 20))
	check(bytes.Repeat([]byte{0xff}, 20))
	valid := 0
	for range 5000 {
		h := make([]byte, 20)
		for i := range h {
			switch x := rnd.Uint32(); x % 4 {
			case 0, 1:
				h[i] = byte(x >> 8)
			case 2:
				h[i] = 0xff
			}
		}
		h[0] = 0x45
		check(h)
		wire.IPv4(h).UpdateChecksum()
		check(h)
		if checksum20Valid(h) {
			valid++
		}
		setTTL4(h, uint8(rnd.Uint32()))
		if !wire.IPv4(h).ChecksumValid() {
			t.Fatalf("setTTL4 left header %x with a wrong checksum", h)
		}
	}
	if valid == 0 {
		t.Fatal("no header verified")
	}
}

// flowHash4 is wire.FlowHash(ip[:tl], seed) for an IPv4 header without
// options (tl ≥ 20 its total length, h0 = wire.FlowStart(seed)), without the
// general function's version switch and length checks
// (TestFlowHash4MatchesWire): the expression the site and core batches
// write out (it does not fit the inliner's budget).
func flowHash4(ip []byte, tl int, h0 uint64) uint32 {
	return wire.FlowFinish(wire.FlowMix(wire.FlowMix(h0, binary.BigEndian.Uint64(ip[12:20])), flowL4(ip, tl)))
}

// TestFlowHash4MatchesWire: the IPv4 flow hash the site batch computes
// inline (wire.FlowStart, FlowMix, FlowFinish and flowL4) equals
// wire.FlowHash over random option-less IPv4 headers: every protocol the
// ports count for and others, fragments (MF, offsets), lengths with and
// without the ports, several seeds.
func TestFlowHash4MatchesWire(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	protos := []uint8{wire.ProtoTCP, wire.ProtoUDP, wire.ProtoSCTP, wire.ProtoUDPLite, 1, 47, 0, 255}
	for range 20000 {
		n := wire.IPv4MinLen + rnd.IntN(12)
		ip := make([]byte, n)
		for i := range ip {
			ip[i] = byte(rnd.Uint32())
		}
		ip[0] = 0x45
		ip[9] = protos[rnd.IntN(len(protos))]
		if rnd.IntN(2) == 0 {
			ip[6], ip[7] = ip[6]&0x40, 0 // not a fragment (DF may be set)
		}
		seed := rnd.Uint32()
		if rnd.IntN(4) == 0 {
			seed = 0
		}
		got := flowHash4(ip, n, wire.FlowStart(seed))
		if want := wire.FlowHash(ip, seed); got != want {
			t.Fatalf("header %x seed %d: inline hash %#x, wire.FlowHash %#x", ip, seed, got, want)
		}
	}
}

// TestFlowHash6MatchesWire: flowHash6 equals wire.FlowHash over random
// IPv6 packets: every protocol the ports count for and others, lengths
// with and without the ports, several seeds.
func TestFlowHash6MatchesWire(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	protos := []uint8{wire.ProtoTCP, wire.ProtoUDP, wire.ProtoSCTP, wire.ProtoUDPLite, 58, 0, 44, 255}
	for range 20000 {
		n := wire.IPv6Len + rnd.IntN(12)
		ip := make([]byte, n)
		for i := range ip {
			ip[i] = byte(rnd.Uint32())
		}
		ip[0] = 0x60 | ip[0]&0x0f
		ip[6] = protos[rnd.IntN(len(protos))]
		seed := rnd.Uint32()
		if rnd.IntN(4) == 0 {
			seed = 0
		}
		got := flowHash6(ip, wire.FlowStart(seed))
		if want := wire.FlowHash(ip, seed); got != want {
			t.Fatalf("packet %x seed %d: flowHash6 %#x, wire.FlowHash %#x", ip, seed, got, want)
		}
	}
}

// TestCsumDecTTL: csumLowerTTL is wire.ChecksumUpdate for a TTL one less,
// for every checksum and TTLs 1 to 255 (each with another protocol), and
// for every drop; decTTL4 and lowerTTL4 write what setTTL4 writes.
func TestCsumDecTTL(t *testing.T) {
	for m := 0x100; m <= 0xffff; m += 0x101 { // every TTL from 1, protocols spread
		for hc := 0; hc <= 0xffff; hc++ {
			want := wire.ChecksumUpdate(uint16(hc), uint16(m), uint16(m-0x100))
			if got := csumLowerTTL(uint16(hc), 1); got != want {
				t.Fatalf("checksum %#04x, TTL/protocol %#04x: csumLowerTTL by 1 %#04x, ChecksumUpdate %#04x", hc, m, got, want)
			}
		}
	}
	// csumLowerTTL, every drop d from the TTL d itself (to 0) and from
	// 255, over every checksum; and lowering by d and then by 1 (the
	// general path's two steps for an RTR) gives what lowering by d+1
	// gives.
	for d := 1; d <= 255; d++ {
		if d < 255 {
			for hc := 0; hc <= 0xffff; hc++ {
				if two, one := csumLowerTTL(csumLowerTTL(uint16(hc), uint8(d)), 1), csumLowerTTL(uint16(hc), uint8(d+1)); two != one {
					t.Fatalf("checksum %#04x: lowered by %d then 1: %#04x; by %d: %#04x", hc, d, two, d+1, one)
				}
			}
		}
		for _, m := range []int{d<<8 | d*7&0xff, 0xff00 | d} {
			for hc := 0; hc <= 0xffff; hc++ {
				want := wire.ChecksumUpdate(uint16(hc), uint16(m), uint16(m-d<<8))
				if got := csumLowerTTL(uint16(hc), uint8(d)); got != want {
					t.Fatalf("checksum %#04x, TTL/protocol %#04x, drop %d: csumLowerTTL %#04x, ChecksumUpdate %#04x", hc, m, d, got, want)
				}
			}
		}
	}
	rnd := rand.New(rand.NewPCG(9, 10))
	for range 2000 {
		h := make([]byte, 20)
		for i := range h {
			h[i] = byte(rnd.Uint32())
		}
		h[8] |= 1 // TTL at least 1
		a, b := append([]byte(nil), h...), append([]byte(nil), h...)
		setTTL4(a, h[8]-1)
		decTTL4(b, h[8]-1)
		if !bytes.Equal(a, b) {
			t.Fatalf("header %x: decTTL4 %x, setTTL4 %x", h, b, a)
		}
		to := uint8(rnd.UintN(uint(h[8]) + 1))
		a, b = append(a[:0], h...), append(b[:0], h...)
		setTTL4(a, to)
		lowerTTL4(b, to)
		if !bytes.Equal(a, b) {
			t.Fatalf("header %x, TTL to %d: lowerTTL4 %x, setTTL4 %x", h, to, b, a)
		}
	}
}

// TestParseSite6MatchesGeneral: parseSite's shortcut for an untagged IPv6
// packet gives what the general parser gives (wire.Ethernet.Payload,
// parseInner, the flow hash): the same fields, or the same drop reason,
// for frames whose payload length is right, too long or too short for the
// frame, and frames with Ethernet padding after the packet.
func TestParseSite6MatchesGeneral(t *testing.T) {
	r := newRig(t, nil)
	pool := r.w.ports[0].p.Pool()
	rnd := rand.New(rand.NewPCG(9, 10))
	taken, dropped := 0, 0
	for i := range 400 {
		b := siteFrame(t, innerSpec{src: hostA6, dst: remote6, ttl: 9, payload: rnd.IntN(300), sport: uint16(rnd.Uint32())})
		switch i % 3 {
		case 1: // any payload length
			binary.BigEndian.PutUint16(b[wire.EthernetLen+4:], uint16(rnd.IntN(400)))
		case 2: // Ethernet padding
			b = append(b, make([]byte, 1+rnd.IntN(40))...)
		}
		var want pktInfo
		want.slot, want.innerOff, want.iid = 0, wire.EthernetLen, iidSite
		wantDrop := r.w.parseInner(&want, b[wire.EthernetLen:], 6, true)
		if wantDrop == dropNone {
			want.hash = wire.FlowHash(b[wire.EthernetLen:wire.EthernetLen+want.innerLen], r.w.cfg.FlowSeed)
		}
		f, ok := pool.Get()
		if !ok || !f.SetLen(len(b)) {
			t.Fatal("no frame")
		}
		copy(f.Bytes(), b)
		var got pktInfo
		before := r.counters()
		took := r.w.parseSite(&got, 0, &f)
		r.w.ctr.Publish() // as Step does
		c := r.countersSince(before)
		if took {
			ring.Release([]ring.Frame{f})
		}
		switch {
		case wantDrop != dropNone:
			dropped++
			if took || c.Dropped(wantDrop) != 1 {
				t.Fatalf("frame %d: parseSite took %v, %d drops as %v; the general parser drops it as %v", i, took, c.Dropped(wantDrop), wantDrop, wantDrop)
			}
		case !took:
			t.Fatalf("frame %d: parseSite dropped it (%v), the general parser takes it", i, c)
		case got != want:
			t.Fatalf("frame %d: parseSite gives %+v, the general parser %+v", i, got, want)
		default:
			taken++
		}
	}
	if taken == 0 || dropped == 0 {
		t.Fatalf("%d frames taken and %d dropped: not both paths", taken, dropped)
	}
}

// TestParseSiteRestMatchesParseSite: parseSiteRest's loop for untagged
// IPv6 packets leaves each packet of a batch as parseSite and stageProbe6
// leave it one by one (the same pktInfo, once lazyAddrs has filled the
// addresses it left in the frame), and drops the same frames for the same
// reasons: random unicast, multicast and IPv4-mapped destinations, any
// payload length, another version or EtherType, Ethernet padding, short
// frames and IPv4 frames, in packets that held an earlier batch's fields.
func TestParseSiteRestMatchesParseSite(t *testing.T) {
	r := newRig(t, nil)
	pool := r.w.ports[0].p.Pool()
	rnd := rand.New(rand.NewPCG(15, 16))
	frame := func(i int) []byte {
		var a [16]byte
		for k := range a {
			a[k] = byte(rnd.Uint32())
		}
		dst := netip.AddrFrom16(a)
		switch i % 10 {
		case 1:
			a[0] = 0xff // multicast
			dst = netip.AddrFrom16(a)
		case 2:
			dst = netip.AddrFrom16(netip.AddrFrom4([4]byte(a[:4])).As16()) // IPv4-mapped
		case 3:
			dst = remote6
		case 9: // an IPv4 frame
			return siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: rnd.IntN(100)})
		}
		b := siteFrame(t, innerSpec{src: hostA6, dst: dst, ttl: 9, payload: rnd.IntN(300), sport: uint16(rnd.Uint32())})
		switch i % 10 {
		case 4: // any payload length, around the frame's end too
			binary.BigEndian.PutUint16(b[wire.EthernetLen+4:], uint16(len(b)-wire.EthernetLen-wire.IPv6Len-20+rnd.IntN(40)))
		case 5: // another version
			b[wire.EthernetLen] = b[wire.EthernetLen]&0x0f | byte(rnd.IntN(16))<<4
		case 6: // another EtherType
			binary.BigEndian.PutUint16(b[12:], []uint16{wire.EtherTypeIPv4, 0x88a8, 0x86dc, uint16(rnd.Uint32())}[rnd.IntN(4)])
		case 7: // Ethernet padding
			b = append(b, make([]byte, 1+rnd.IntN(40))...)
		case 8: // short
			b = b[:rnd.IntN(wire.EthernetLen+wire.IPv6Len+8)]
		}
		return b
	}
	// garbage is what an earlier batch may have left in a packet.
	garbage := func(pk *pktInfo) {
		*pk = pktInfo{act: actParse, fset: flowRef(rnd.Uint32()), fset6: flowRef(rnd.Uint32()), mkey: rnd.Uint64(), mlo: rnd.Uint64(),
			hash: rnd.Uint32(), innerLen: rnd.IntN(2000), v4: rnd.IntN(2) == 0, rtr: true, lazyAddrs: rnd.IntN(2) == 0,
			dst: remote4, src: hostA}
	}
	frames := func(bs [][]byte) []ring.Frame {
		fs := make([]ring.Frame, len(bs))
		for i, b := range bs {
			f, ok := pool.Get()
			if !ok || !f.SetLen(len(b)) {
				t.Fatal("no frame")
			}
			copy(f.Bytes(), b)
			fs[i] = f
		}
		return fs
	}
	taken, dropped := 0, 0
	for round := range 40 {
		bs := make([][]byte, 1+rnd.IntN(ring.IdealBatchSize))
		for i := range bs {
			bs[i] = frame(rnd.IntN(10))
		}
		want := make([]pktInfo, len(bs))
		for i := range want {
			garbage(&want[i])
		}
		got := append([]pktInfo(nil), want...)
		// One by one, as parseSiteRest did before its IPv6 loop.
		fs := frames(bs)
		before := r.counters()
		for j := range want {
			pk := &want[j]
			pk.act, pk.fset, pk.lazyAddrs = actDone, 0, false
			if r.w.parseSite(pk, 0, &fs[j]) {
				pk.act = actForward
				if pk.v4 {
					r.w.stageProbe(pk)
				} else {
					r.w.stageProbe6(pk, fs[j].Bytes())
				}
			}
		}
		r.w.ctr.Publish()
		cWant := r.countersSince(before)
		fs2 := frames(bs)
		before = r.counters()
		r.w.parseSiteRest(got, fs2, 0)
		r.w.ctr.Publish()
		cGot := r.countersSince(before)
		if cGot != cWant {
			t.Fatalf("round %d: counters %v in a batch, %v one by one", round, cGot, cWant)
		}
		for j := range got {
			if got[j].act == actForward {
				lazyAddrsIn(&got[j], fs2[j].Bytes())
				taken++
			} else {
				dropped++
			}
			if got[j] != want[j] {
				t.Fatalf("round %d, frame %d (%x): parseSiteRest gives %+v, parseSite and stageProbe6 %+v", round, j, bs[j], got[j], want[j])
			}
		}
		for _, fs := range [][]ring.Frame{fs, fs2} {
			for j := range fs {
				if want[j].act == actForward {
					ring.Release(fs[j : j+1])
				}
			}
		}
	}
	if taken == 0 || dropped == 0 {
		t.Fatalf("%d packets taken and %d dropped: not both paths", taken, dropped)
	}
}

// TestStageProbe6Keys: stageProbe6, which reads a packet's IPv6
// destination from the frame, names the flow memo set and key that pk.dst
// gives (key6), for random unicast destinations and flow hashes; for a
// multicast destination or an IPv4-mapped one it names none, also when
// the packet held a set from an earlier batch.
func TestStageProbe6Keys(t *testing.T) {
	r := newRig(t, nil)
	rnd := rand.New(rand.NewPCG(13, 14))
	for i := range 3000 {
		var a [16]byte
		for k := range a {
			a[k] = byte(rnd.Uint32())
		}
		none := false
		switch i % 10 {
		case 0:
			a[0], none = 0xff, true // multicast
		case 1:
			a = netip.AddrFrom4([4]byte(a[:4])).As16() // IPv4-mapped
			none = true
		default:
			if a[0] == 0xff {
				a[0] = 0x20
			}
		}
		dst := netip.AddrFrom16(a)
		b := siteFrame(t, innerSpec{src: hostA6, dst: dst, ttl: 9, payload: 8})
		want := pktInfo{iid: iidSite, dst: dst, hash: rnd.Uint32(), innerOff: wire.EthernetLen}
		got := want
		if key6(r.w.memo, &want); none {
			want.fset6 = 0
		}
		got.fset6 = 77 // stale, from an earlier batch
		r.w.stageProbe6(&got, b)
		if got.fset6 != want.fset6 || got.fset6 != 0 && (got.mkey != want.mkey || got.mlo != want.mlo) {
			t.Fatalf("%v: stageProbe6 set %d (%#x %#x), want %d (%#x %#x)", dst, got.fset6, got.mkey, got.mlo, want.fset6, want.mkey, want.mlo)
		}
		if none != (got.fset6 == 0) {
			t.Fatalf("%v: set %d", dst, got.fset6)
		}
	}
}

// TestBatchIPv6FlowsShareASet: three IPv6 flows whose flow memo set is the
// same, sent in turn batch after batch, leave the batch path as they
// leave the general one: the third flow's packets, and the others' after
// it, are found in the buddy set (flow6Buddy) in encapLoop's run
// (loopLater) as well as in lookupStage.
func TestBatchIPv6FlowsShareASet(t *testing.T) {
	batch, general := newTwins(t)
	rnd := rand.New(rand.NewPCG(19, 20))
	bySet := map[flowRef][][]byte{}
	var same [][]byte
	for same == nil {
		var a [16]byte
		copy(a[:], remote6v6.AsSlice()[:6]) // 2001:db8:3::/48, behind rlocRemote6
		for k := 6; k < 16; k++ {
			a[k] = byte(rnd.Uint32())
		}
		b := siteFrame(t, innerSpec{src: hostA6, dst: netip.AddrFrom16(a), ttl: 64, payload: 20, sport: uint16(rnd.Uint32())})
		ip := b[wire.EthernetLen:]
		hash := flowHash6(ip, batch.w.flow0)
		set := batch.w.memo.flowSet6(iidSite, binary.BigEndian.Uint64(ip[24:]), binary.BigEndian.Uint64(ip[32:]), hash)
		if bySet[set] = append(bySet[set], b); len(bySet[set]) == 3 {
			same = bySet[set]
		}
	}
	for round := range 6 {
		var bs [][]byte
		for range 1 + rnd.IntN(4) {
			bs = append(bs, same...)
		}
		runTwins(t, batch, general, bs, make([]bool, len(bs)), round)
	}
	if batch.w.Extra(ExtraFlowHit) == 0 {
		t.Fatal("no flow memo hit")
	}
}
