package fastpath

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/wire"
)

// udpSrcPorts returns the UDP source port of the inner packet of every
// frame: frames the site receives carry it directly, frames the core
// receives inside LISP.
func udpSrcPorts(t *testing.T, frames [][]byte, encapsulated bool) []uint16 {
	t.Helper()
	var out []uint16
	for _, b := range frames {
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		if encapsulated {
			p = decodeLISP(t, b).inner
		}
		u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			t.Fatalf("no inner UDP in %x", b)
		}
		out = append(out, uint16(u.SrcPort))
	}
	return out
}

// TestBatchKeepsArrivalOrder sends one batch mixing the cases the staged
// pipeline treats differently (packets to deliver, to re-encapsulate, to
// hold, to drop; IPv4 and IPv6) and checks that every port sends its packets
// in the order they arrived.
func TestBatchKeepsArrivalOrder(t *testing.T) {
	t.Run("core", func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.RTR = true })
		r.install([]StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("10.30.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocOther4}}}})
		deliver := func(src, dst netip.Addr, sport uint16) []byte {
			in := innerPacket(t, innerSpec{src: src, dst: dst, sport: sport, payload: 10})
			return lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in})
		}
		reencap := func(dst string, sport uint16, ttl uint8) []byte {
			in := innerPacket(t, innerSpec{src: remote4, dst: netip.MustParseAddr(dst), sport: sport, ttl: ttl, payload: 10})
			return lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: in})
		}
		before := r.counters()
		r.fromCore(
			deliver(remote4, hostA, 1),
			reencap("10.30.0.1", 2, 0),
			deliver(remote6, hostA6, 3),
			reencap("10.31.0.1", 4, 0), // no mapping: held
			reencap("10.30.0.2", 5, 0),
			reencap("10.30.0.3", 6, 1), // TTL expires: dropped
			deliver(remote4, hostA, 7),
			reencap("10.30.0.4", 8, 0),
			deliver(remote6, hostA6, 9),
		)
		after := r.counters()
		if got, want := udpSrcPorts(t, drain(r.site), false), []uint16{1, 3, 7, 9}; !slices.Equal(got, want) {
			t.Errorf("site port sent %v, want %v", got, want)
		}
		if got, want := udpSrcPorts(t, drain(r.core), true), []uint16{2, 5, 8}; !slices.Equal(got, want) {
			t.Errorf("core port sent %v, want %v", got, want)
		}
		if m, d := after.Get(CounterMiss)-before.Get(CounterMiss), after.Dropped(DropTTLExpired)-before.Dropped(DropTTLExpired); m != 1 || d != 1 {
			t.Errorf("misses %d, TTL drops %d, want 1, 1", m, d)
		}
	})
	t.Run("site", func(t *testing.T) {
		r := newRig(t, nil)
		frame := func(src, dst netip.Addr, sport uint16, ttl uint8) []byte {
			return siteFrame(t, innerSpec{src: src, dst: dst, sport: sport, ttl: ttl, payload: 10})
		}
		unmapped := netip.MustParseAddr("10.9.0.1")
		before := r.counters()
		r.fromSite(
			frame(hostA, remote4, 1, 0),
			frame(hostA6, remote6v6, 2, 0), // IPv6 in IPv6
			frame(hostA, unmapped, 3, 0),   // held
			frame(hostA, remote4v6, 4, 0),  // IPv4 in IPv6
			frame(hostA, remote4, 5, 1),    // TTL expires
			frame(hostA6, remote6, 6, 0),   // IPv6 in IPv4
			frame(hostA, remote4, 7, 0),
		)
		after := r.counters()
		if got, want := udpSrcPorts(t, drain(r.core), true), []uint16{1, 2, 4, 6, 7}; !slices.Equal(got, want) {
			t.Errorf("core port sent %v, want %v", got, want)
		}
		if m, d := after.Get(CounterMiss)-before.Get(CounterMiss), after.Dropped(DropTTLExpired)-before.Dropped(DropTTLExpired); m != 1 || d != 1 {
			t.Errorf("misses %d, TTL drops %d, want 1, 1", m, d)
		}
	})
}

// TestReplicaSourcePort: the copies of a replicated packet carry the UDP
// source port of the inner packet's flow hash (RFC 9300 §5.3), which the
// batch takes while parsing, before the TTL changes.
func TestReplicaSourcePort(t *testing.T) {
	r := newRig(t, nil)
	hops := []cache.RLEHop{{Addr: mcETR(1), Level: 128}, {Addr: mcETR(2), Level: 128}}
	installSG(t, r, iidSite, hostA, hops)
	spec := innerSpec{src: hostA, dst: mcGroup, ttl: 9, sport: 5555, payload: 22}
	want := wire.SourcePort(wire.FlowHash(innerPacket(t, spec), 0))
	r.fromSite(siteFrame(t, spec))
	frames := drain(r.core)
	if len(frames) != 2 {
		t.Fatalf("%d copies, want 2", len(frames))
	}
	for _, fr := range frames {
		if got := decodeLISP(t, fr).udp.SrcPort; uint16(got) != want {
			t.Errorf("copy's UDP source port %d, want %d", got, want)
		}
	}
}

// TestChooseClearsRLOC: a packet whose destination the memo maps to a
// negative entry (drop) gets no RLOC, even in a batch slot whose previous
// packet was encapsulated (lookupStage leaves pk.r to choose). Keeping the
// previous packet's RLOC makes it fail: the packet is encapsulated to it.
func TestChooseClearsRLOC(t *testing.T) {
	r := newRig(t, nil)
	neg := netip.MustParseAddr("10.3.0.9")
	r.install([]StaticMapping{
		{IID: iidSite, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
		{IID: iidSite, Prefix: netip.MustParsePrefix("10.3.0.0/16"), Action: wire.ActionDrop},
	})
	negFrame := siteFrame(t, innerSpec{src: hostA, dst: neg, payload: 20})
	r.fromSite(negFrame) // fills the memo
	drain(r.core)
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 20}))
	if out := drain(r.core); len(out) != 1 {
		t.Fatalf("positive mapping: %d frames, want 1", len(out))
	}
	before := r.counters()
	r.fromSite(negFrame) // a memo hit, in the slot of the packet above
	if out := drain(r.core); len(out) != 0 {
		t.Fatalf("negative mapping: %d frames sent, want none", len(out))
	}
	expectDrop(t, before, r.counters(), DropNegative)
}

// TestBatchDropLeavesNoAction: a site packet with a bad header checksum,
// in the batch slot of a packet forwarded in the step before, is dropped
// once (DropBadIP) and nothing else happens to it. Leaving the slot's
// earlier action in place makes it fail.
func TestBatchDropLeavesNoAction(t *testing.T) {
	r := newRig(t, nil)
	r.install([]StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}}})
	good := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 20})
	r.fromSite(good)
	if out := drain(r.core); len(out) != 1 {
		t.Fatalf("good packet: %d frames, want 1", len(out))
	}
	bad := append([]byte(nil), good...)
	bad[14+10] ^= 0x5a // the inner header checksum
	before := r.counters()
	r.fromSite(bad)
	if out := drain(r.core); len(out) != 0 {
		t.Fatalf("bad checksum: %d frames sent, want none", len(out))
	}
	expectDrop(t, before, r.counters(), DropBadIP)
}
