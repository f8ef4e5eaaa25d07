package fastpath

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
)

var gRLOC = netip.MustParseAddr("239.255.0.7")

func TestMulticastMAC(t *testing.T) {
	cases := []struct {
		g    string
		want [6]byte
	}{
		{"239.255.1.2", [6]byte{0x01, 0x00, 0x5e, 0x7f, 0x01, 0x02}},
		{"224.128.1.2", [6]byte{0x01, 0x00, 0x5e, 0x00, 0x01, 0x02}}, // bit 24 is not mapped
		{"233.252.0.9", [6]byte{0x01, 0x00, 0x5e, 0x7c, 0x00, 0x09}},
		{"ff0e::1:ff00:1234", [6]byte{0x33, 0x33, 0xff, 0x00, 0x12, 0x34}},
		{"::ffff:239.1.2.3", [6]byte{0x01, 0x00, 0x5e, 0x01, 0x02, 0x03}},
	}
	for _, tc := range cases {
		if got := nexthop.MulticastMAC(netip.MustParseAddr(tc.g)); got != tc.want {
			t.Errorf("nexthop.MulticastMAC(%s) = %x, want %x", tc.g, got, tc.want)
		}
	}
	if got := nexthop.MulticastMAC(netip.Addr{}); got != [6]byte{} {
		t.Errorf("invalid address maps to %x", got)
	}
}

// TestNextHopsMulticast: a G-RLOC resolves without a neighbour to its
// mapped MAC, out of the Multicast link, a more specific route's link, or
// the default route's link.
func TestNextHopsMulticast(t *testing.T) {
	links := []nexthop.Link{
		{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true},
		{Index: 20, MAC: macCore, MTU: 1400, Port: 2, Up: true},
		{Index: 30, MAC: [6]byte{2, 0, 0, 0, 0, 0x30}, MTU: 1500, Port: 3, Up: true, Multicast: true},
	}
	def := []nexthop.Route{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw4, IfIndex: 20},
		{Prefix: netip.MustParsePrefix("::/0"), Gateway: gw6, IfIndex: 20},
	}
	neighs := []nexthop.Neighbour{{Addr: gw4, IfIndex: 20, MAC: macUnderGW, Valid: true}}
	g6 := netip.MustParseAddr("ff3e::8000:1")

	check := func(name string, s *nexthop.Snapshot, g netip.Addr, wantPort uint16, wantSrc [6]byte) {
		t.Helper()
		adj, st := s.Resolve(g)
		if st != nexthop.AdjResolved || adj.Port != wantPort || adj.DstMAC != nexthop.MulticastMAC(g) || adj.SrcMAC != wantSrc || adj.NextHop != g {
			t.Errorf("%s: Resolve(%s) = %+v %v, want port %d dst %x src %x", name, g, adj, st, wantPort, nexthop.MulticastMAC(g), wantSrc)
		}
	}
	// The Multicast link wins over the default route.
	s := nexthop.NewSnapshot(links, def, neighs)
	check("multicast link", s, gRLOC, 3, links[2].MAC)
	check("multicast link v6", s, g6, 3, links[2].MAC)
	// Without one, the default route's link, with the group MAC (not the gateway's).
	noMC := []nexthop.Link{links[0], links[1], {Index: 30, Port: 3, Up: true}}
	s = nexthop.NewSnapshot(noMC, def, neighs)
	check("default route", s, gRLOC, 2, macCore)
	// A specific route to the group range wins over the Multicast link.
	spec := append([]nexthop.Route{{Prefix: netip.MustParsePrefix("239.255.0.0/16"), IfIndex: 10}}, def...)
	s = nexthop.NewSnapshot(links, spec, neighs)
	check("specific route", s, gRLOC, 1, macSite)
	// A down Multicast link and no route: no route. A reject route: no route.
	s = nexthop.NewSnapshot([]nexthop.Link{{Index: 30, Port: 3, Up: false, Multicast: true}}, nil, nil)
	if _, st := s.Resolve(gRLOC); st != nexthop.AdjNoRoute {
		t.Errorf("down multicast link: %v", st)
	}
	s = nexthop.NewSnapshot(links, []nexthop.Route{{Prefix: netip.MustParsePrefix("239.0.0.0/8"), Reject: true}}, nil)
	if _, st := s.Resolve(gRLOC); st != nexthop.AdjNoRoute {
		t.Errorf("reject route: %v", st)
	}
	// A route through a link the fast path does not own: the kernel.
	s = nexthop.NewSnapshot(links, []nexthop.Route{{Prefix: netip.MustParsePrefix("239.0.0.0/8"), IfIndex: 99}}, nil)
	if _, st := s.Resolve(gRLOC); st != nexthop.AdjKernel {
		t.Errorf("foreign link: %v", st)
	}
	s = nexthop.NewSnapshot(links, def, neighs)
	if n := testing.AllocsPerRun(100, func() { s.Resolve(gRLOC) }); n != 0 {
		t.Errorf("Resolve of a group allocates %v", n)
	}
}

// multicastRigNextHops is the rig's table with the core link marked as the
// multicast underlay link.
func multicastRigNextHops() *nexthop.Snapshot {
	links := []nexthop.Link{
		{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true},
		{Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true, Multicast: true},
	}
	routes := []nexthop.Route{
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), IfIndex: 10},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
	}
	neighs := []nexthop.Neighbour{
		{Addr: rlocRemote4, IfIndex: 20, MAC: macUnderGW, Valid: true},
		{Addr: hostA, IfIndex: 10, MAC: macHostA, Valid: true},
	}
	return nexthop.NewSnapshot(links, routes, neighs)
}

// TestReplicateToUnderlayGroup: an ITR whose RLE holds a G-RLOC and one
// U-RLOC sends one copy to the group (group MAC, core port) and one
// unicast copy per packet, none dropped as no-route.
func TestReplicateToUnderlayGroup(t *testing.T) {
	r := newRig(t, nil)
	r.nh.Store(multicastRigNextHops()) // no default route: only the Multicast link reaches the group
	installSG(t, r, iidSite, hostA, []cache.RLEHop{{Addr: gRLOC, Level: 128}, {Addr: rlocRemote4, Level: 128}})
	const packets = 10
	spec := innerSpec{src: hostA, dst: mcGroup, ttl: 9, payload: 30}
	groupMAC := nexthop.MulticastMAC(gRLOC)
	var toGroup, toU int
	for range packets {
		r.fromSite(siteFrame(t, spec))
		for _, fr := range drain(r.core) {
			p := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
			ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if ip == nil || udp == nil || udp.DstPort != 4341 {
				t.Fatalf("copy is not IPv4/UDP 4341: %v", p)
			}
			if !bytes.Equal(fr[6:12], macCore[:]) {
				t.Errorf("copy source MAC %x", fr[6:12])
			}
			d, _ := netip.AddrFromSlice(ip.DstIP)
			switch {
			case d == gRLOC && bytes.Equal(fr[0:6], groupMAC[:]):
				toGroup++
			case d == rlocRemote4 && bytes.Equal(fr[0:6], macUnderGW[:]):
				toU++
			default:
				t.Errorf("copy to %s with MAC %x", d, fr[0:6])
			}
		}
	}
	if toGroup != packets || toU != packets {
		t.Errorf("%d copies to the G-RLOC and %d to the U-RLOC for %d packets", toGroup, toU, packets)
	}
	c := r.counters()
	if c.Get(CounterReplicate) != 2*packets || c.DroppedTotal() != 0 {
		t.Errorf("replicate %d, dropped %d (no-route %d)", c.Get(CounterReplicate), c.DroppedTotal(), c.Dropped(DropNoRoute))
	}
}

// TestDecapUnderlayGroup: the ETR decapsulates LISP data sent to a G-RLOC
// and tells UnderlayGroup until it accepts; a non-LISP packet to the group does not.
func TestDecapUnderlayGroup(t *testing.T) {
	var calls []netip.Addr
	r := newRig(t, func(c *Config) {
		c.UnderlayGroup = func(g netip.Addr) bool { calls = append(calls, g); return len(calls) > 1 }
	})
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, ttl: 50, payload: 40})
	r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: gRLOC, ttl: 60, iid: iidSite, dport: 9999, inner: in}))
	if len(calls) != 0 {
		t.Errorf("UnderlayGroup called for a non-LISP packet")
	}
	for range 3 {
		r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: gRLOC, ttl: 60, iid: iidSite, inner: in}))
		if b := one(t, r.site); !bytes.Equal(b[14:], in) {
			t.Errorf("delivered inner packet differs")
		}
	}
	// The first call is refused (the engine not running yet), the second
	// accepted, the third packet (within the renewal period, ugRenew)
	// makes none.
	if len(calls) != 2 || calls[0] != gRLOC || calls[1] != gRLOC {
		t.Errorf("UnderlayGroup calls %v, want two for %s", calls, gRLOC)
	}
	if c := r.counters(); c.Get(CounterDecap) != 3 {
		t.Errorf("decap %d, want 3", c.Get(CounterDecap))
	}
}

// TestDecapLocalGroups: with Config.LocalGroups, decapsulated multicast
// reaches the site only for (S,G)/(*,G) with receivers there; other groups
// (a many:1 underlay group carries them too) are dropped as
// DropNoReceivers, unicast is untouched, and a new set takes effect at once.
func TestDecapLocalGroups(t *testing.T) {
	lg := &LocalGroups{}
	r := newRig(t, func(c *Config) { c.LocalGroups = lg })
	r.nh.Store(testNextHops(nexthop.Route{Prefix: netip.MustParsePrefix("232.0.0.0/8"), IfIndex: 10}))
	star, ssm := netip.MustParseAddr("232.1.1.1"), netip.MustParseAddr("232.5.5.5")
	lg.Set([]LocalGroup{{IID: iidSite, Group: star}, {IID: iidSite, Source: remote4, Group: ssm}})
	send := func(src, dst netip.Addr) bool {
		t.Helper()
		in := innerPacket(t, innerSpec{src: src, dst: dst, ttl: 50, payload: 40})
		c := r.counters()
		before := c.Dropped(DropNoReceivers)
		r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: gRLOC, ttl: 60, iid: iidSite, inner: in}))
		if c = r.counters(); c.Dropped(DropNoReceivers) > before {
			return false
		}
		if b := one(t, r.site); !bytes.Equal(b[14:], in) {
			t.Errorf("%s->%s: delivered inner packet differs", src, dst)
		}
		return true
	}
	other := netip.MustParseAddr("10.2.0.8")
	for _, tc := range []struct {
		src, dst netip.Addr
		want     bool
	}{
		{remote4, star, true}, // (*,G) receivers
		{other, star, true},   // any source
		{remote4, ssm, true},  // (S,G) receivers
		{other, ssm, false},   // not that source
		{remote4, netip.MustParseAddr("232.2.2.2"), false}, // no receivers
		{remote4, hostA, true},                             // unicast
	} {
		if got := send(tc.src, tc.dst); got != tc.want {
			t.Errorf("%s->%s delivered %v, want %v", tc.src, tc.dst, got, tc.want)
		}
	}
	lg.Set(nil)
	if send(remote4, star) {
		t.Error("delivered after the last receiver left")
	}
	if c := r.counters(); c.Dropped(DropNoReceivers) != 3 {
		got := c.Dropped(DropNoReceivers)
		t.Errorf("DropNoReceivers = %d, want 3", got)
	}
}
