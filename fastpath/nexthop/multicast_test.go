package nexthop

import (
	"net/netip"
	"testing"
)

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
		if got := MulticastMAC(netip.MustParseAddr(tc.g)); got != tc.want {
			t.Errorf("MulticastMAC(%s) = %x, want %x", tc.g, got, tc.want)
		}
	}
	if got := MulticastMAC(netip.Addr{}); got != [6]byte{} {
		t.Errorf("invalid address maps to %x", got)
	}
}

// TestNextHopsMulticast: a G-RLOC resolves without a neighbour to its
// mapped MAC, out of the Multicast link, a more specific route's link, or
// the default route's link.
func TestNextHopsMulticast(t *testing.T) {
	var (
		macSite    = [6]byte{0x02, 0, 0, 0, 0, 0x10}
		macCore    = [6]byte{0x02, 0, 0, 0, 0, 0x20}
		macUnderGW = [6]byte{0x02, 0, 0, 0, 0, 0xfe}
		gw4        = netip.MustParseAddr("192.0.2.254")
		gw6        = netip.MustParseAddr("2001:db8:ff::fe")
		gRLOC      = netip.MustParseAddr("239.255.0.7")
	)
	links := []Link{
		{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true},
		{Index: 20, MAC: macCore, MTU: 1400, Port: 2, Up: true},
		{Index: 30, MAC: [6]byte{2, 0, 0, 0, 0, 0x30}, MTU: 1500, Port: 3, Up: true, Multicast: true},
	}
	def := []Route{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw4, IfIndex: 20},
		{Prefix: netip.MustParsePrefix("::/0"), Gateway: gw6, IfIndex: 20},
	}
	neighs := []Neighbour{{Addr: gw4, IfIndex: 20, MAC: macUnderGW, Valid: true}}
	g6 := netip.MustParseAddr("ff3e::8000:1")

	check := func(name string, s *Snapshot, g netip.Addr, wantPort uint16, wantSrc [6]byte) {
		t.Helper()
		adj, st := s.Resolve(g)
		if st != AdjResolved || adj.Port != wantPort || adj.DstMAC != MulticastMAC(g) || adj.SrcMAC != wantSrc || adj.NextHop != g {
			t.Errorf("%s: Resolve(%s) = %+v %v, want port %d dst %x src %x", name, g, adj, st, wantPort, MulticastMAC(g), wantSrc)
		}
	}
	// The Multicast link wins over the default route.
	s := NewSnapshot(links, def, neighs)
	check("multicast link", s, gRLOC, 3, links[2].MAC)
	check("multicast link v6", s, g6, 3, links[2].MAC)
	// Without one, the default route's link, with the group MAC (not the gateway's).
	noMC := []Link{links[0], links[1], {Index: 30, Port: 3, Up: true}}
	s = NewSnapshot(noMC, def, neighs)
	check("default route", s, gRLOC, 2, macCore)
	// A specific route to the group range wins over the Multicast link.
	spec := append([]Route{{Prefix: netip.MustParsePrefix("239.255.0.0/16"), IfIndex: 10}}, def...)
	s = NewSnapshot(links, spec, neighs)
	check("specific route", s, gRLOC, 1, macSite)
	// A down Multicast link and no route: no route. A reject route: no route.
	s = NewSnapshot([]Link{{Index: 30, Port: 3, Up: false, Multicast: true}}, nil, nil)
	if _, st := s.Resolve(gRLOC); st != AdjNoRoute {
		t.Errorf("down multicast link: %v", st)
	}
	s = NewSnapshot(links, []Route{{Prefix: netip.MustParsePrefix("239.0.0.0/8"), Reject: true}}, nil)
	if _, st := s.Resolve(gRLOC); st != AdjNoRoute {
		t.Errorf("reject route: %v", st)
	}
	// A route through a link the fast path does not own: the kernel.
	s = NewSnapshot(links, []Route{{Prefix: netip.MustParsePrefix("239.0.0.0/8"), IfIndex: 99}}, nil)
	if _, st := s.Resolve(gRLOC); st != AdjKernel {
		t.Errorf("foreign link: %v", st)
	}
	s = NewSnapshot(links, def, neighs)
	if n := testing.AllocsPerRun(100, func() { s.Resolve(gRLOC) }); n != 0 {
		t.Errorf("Resolve of a group allocates %v", n)
	}
}
