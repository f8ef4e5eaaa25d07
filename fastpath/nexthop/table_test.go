package nexthop

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	macA  = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB  = [6]byte{2, 0, 0, 0, 0, 0xb}
	macGW = [6]byte{2, 0, 0, 0, 0, 0x1}
	macH  = [6]byte{2, 0, 0, 0, 0, 0x2}
	macG6 = [6]byte{2, 0, 0, 0, 0, 0x6}
)

func testSnapshot() *Snapshot {
	links := []Link{
		{Index: 2, MAC: macA, MTU: 1500, Port: 0, Up: true},
		{Index: 3, MAC: macB, MTU: 9000, Port: 1, Up: true},
		{Index: 4, MAC: macB, MTU: 1500, Port: 2, Up: false},
		{Index: 5, Port: -1, Up: true}, // management interface, not ours
	}
	routes := []Route{
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.1"), IfIndex: 2},
		{Prefix: netip.MustParsePrefix("10.0.0.0/24"), IfIndex: 2},
		{Prefix: netip.MustParsePrefix("10.0.0.128/25"), Gateway: netip.MustParseAddr("10.0.0.9"), IfIndex: 2},
		{Prefix: netip.MustParsePrefix("10.0.0.200/32"), IfIndex: 3},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), IfIndex: 4},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Reject: true},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Gateway: netip.MustParseAddr("172.16.0.1"), IfIndex: 5},
		{Prefix: netip.MustParsePrefix("::/0"), Gateway: netip.MustParseAddr("fe80::1"), IfIndex: 3},
		{Prefix: netip.MustParsePrefix("2001:db8::/64"), IfIndex: 3},
		{Prefix: netip.MustParsePrefix("2001:db8:0:0:8000::/65"), IfIndex: 2},
	}
	neighs := []Neighbour{
		{Addr: netip.MustParseAddr("10.0.0.1"), IfIndex: 2, MAC: macGW, Valid: true},
		{Addr: netip.MustParseAddr("10.0.0.7"), IfIndex: 2, MAC: macH, Valid: true},
		{Addr: netip.MustParseAddr("10.0.0.8"), IfIndex: 2, Valid: false},
		{Addr: netip.MustParseAddr("10.0.0.7"), IfIndex: 3, MAC: macB, Valid: true}, // same IP, other link
		{Addr: netip.MustParseAddr("fe80::1"), IfIndex: 3, MAC: macG6, Valid: true},
		{Addr: netip.MustParseAddr("2001:db8::5"), IfIndex: 3, MAC: macH, Valid: true},
	}
	return NewSnapshot(links, routes, neighs)
}

func TestNextHopsResolve(t *testing.T) {
	s := testSnapshot()
	a := netip.MustParseAddr
	for _, tc := range []struct {
		dst     string
		status  AdjStatus
		dstMAC  [6]byte
		nextHop string
		port    uint16
	}{
		{"8.8.8.8", AdjResolved, macGW, "10.0.0.1", 0},            // default via gateway
		{"10.0.0.7", AdjResolved, macH, "10.0.0.7", 0},            // connected, neighbour on ifindex 2
		{"10.0.0.8", AdjIncomplete, [6]byte{}, "10.0.0.8", 0},     // connected, neighbour incomplete
		{"10.0.0.9", AdjIncomplete, [6]byte{}, "10.0.0.9", 0},     // connected, no neighbour entry
		{"10.0.0.130", AdjIncomplete, [6]byte{}, "10.0.0.9", 0},   // /25 via unresolved gateway
		{"10.0.0.200", AdjIncomplete, [6]byte{}, "10.0.0.200", 1}, // /32 on another link
		{"192.0.2.5", AdjNoRoute, [6]byte{}, "", 0},               // link down
		{"198.51.100.1", AdjNoRoute, [6]byte{}, "", 0},            // reject route
		{"203.0.113.1", AdjKernel, [6]byte{}, "", 0},              // not our interface
		{"::ffff:10.0.0.7", AdjResolved, macH, "10.0.0.7", 0},     // v4-mapped treated as v4
		{"2001:db8::5", AdjResolved, macH, "2001:db8::5", 1},
		{"2001:db8::8000:0:0:5", AdjIncomplete, [6]byte{}, "2001:db8::8000:0:0:5", 0}, // /65
		{"2001:db9::1", AdjResolved, macG6, "fe80::1", 1},                             // default via link-local
	} {
		adj, st := s.Resolve(a(tc.dst))
		if st != tc.status {
			t.Errorf("%s: status %v, want %v", tc.dst, st, tc.status)
			continue
		}
		if st != AdjResolved && st != AdjIncomplete {
			continue
		}
		if adj.DstMAC != tc.dstMAC || adj.NextHop != a(tc.nextHop) || adj.Port != tc.port {
			t.Errorf("%s: %+v, want mac %x next hop %s port %d", tc.dst, adj, tc.dstMAC, tc.nextHop, tc.port)
		}
		wantSrc, wantMTU := macA, uint32(1500)
		if tc.port == 1 {
			wantSrc, wantMTU = macB, 9000
		}
		if adj.SrcMAC != wantSrc || adj.MTU != wantMTU {
			t.Errorf("%s: src %x mtu %d", tc.dst, adj.SrcMAC, adj.MTU)
		}
	}
	if _, st := s.Resolve(netip.Addr{}); st != AdjNoRoute {
		t.Error("invalid address resolved")
	}
	empty := NewSnapshot(nil, nil, nil)
	if _, st := empty.Resolve(a("10.0.0.1")); st != AdjNoRoute {
		t.Error("empty table resolved")
	}
	var tab Table
	if _, st := tab.Resolve(a("10.0.0.1")); st != AdjNoRoute {
		t.Error("table without snapshot resolved")
	}
	tab.Store(s)
	if _, st := tab.Resolve(a("10.0.0.7")); st != AdjResolved || tab.Load() != s {
		t.Error("table does not serve its snapshot")
	}
}

// TestNextHopsLPM checks the matcher against a linear scan over many
// prefixes of every length.
func TestNextHopsLPM(t *testing.T) {
	links := []Link{{Index: 1, Port: 0, Up: true}}
	var routes []Route
	base4 := netip.MustParseAddr("10.20.30.40")
	base6 := netip.MustParseAddr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")
	for bits := 0; bits <= 32; bits++ {
		routes = append(routes, Route{Prefix: netip.PrefixFrom(base4, bits).Masked(), IfIndex: 1,
			Gateway: netip.AddrFrom4([4]byte{10, 0, 0, byte(bits)})})
	}
	for bits := 0; bits <= 128; bits += 3 {
		routes = append(routes, Route{Prefix: netip.PrefixFrom(base6, bits).Masked(), IfIndex: 1,
			Gateway: netip.AddrFrom16([16]byte{0xfe, 0x80, 15: byte(bits)})})
	}
	s := NewSnapshot(links, routes, nil)
	check := func(dst netip.Addr) {
		best := -1
		for i, r := range routes {
			if r.Prefix.Contains(dst) && (best < 0 || r.Prefix.Bits() > routes[best].Prefix.Bits()) {
				best = i
			}
		}
		adj, st := s.Resolve(dst)
		if best < 0 {
			if st != AdjNoRoute {
				t.Fatalf("%v: resolved without a route", dst)
			}
			return
		}
		if st != AdjIncomplete || adj.NextHop != routes[best].Gateway {
			t.Fatalf("%v: next hop %v (%v), want %v", dst, adj.NextHop, st, routes[best].Gateway)
		}
	}
	for bit := 0; bit < 32; bit++ {
		b := base4.As4()
		b[bit/8] ^= 0x80 >> (bit % 8)
		check(netip.AddrFrom4(b))
	}
	check(base4)
	for bit := 0; bit < 128; bit++ {
		b := base6.As16()
		b[bit/8] ^= 0x80 >> (bit % 8)
		check(netip.AddrFrom16(b))
	}
	check(base6)
}

func TestNextHopsAllocs(t *testing.T) {
	var tab Table
	tab.Store(testSnapshot())
	dsts := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("2001:db8::5")}
	if n := testing.AllocsPerRun(1000, func() {
		for _, d := range dsts {
			tab.Resolve(d)
		}
	}); n != 0 {
		t.Fatalf("%v allocs per Resolve round", n)
	}
}

// TestNextHopTableConcurrent swaps snapshots while a reader resolves (-race).
func TestNextHopTableConcurrent(t *testing.T) {
	var tab Table
	links := []Link{{Index: 2, MAC: macA, Port: 0, Up: true}}
	gw := netip.MustParseAddr("10.0.0.1")
	mk := func(mac byte) *Snapshot {
		return NewSnapshot(links,
			[]Route{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw, IfIndex: 2}},
			[]Neighbour{{Addr: gw, IfIndex: 2, MAC: [6]byte{2, 0, 0, 0, 0, mac}, Valid: true}})
	}
	tab.Store(mk(0))
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i < 2000; i++ {
			tab.Store(mk(byte(i)))
		}
		stop.Store(true)
	}()
	dst := netip.MustParseAddr("192.0.2.1")
	for !stop.Load() {
		if _, st := tab.Resolve(dst); st != AdjResolved {
			t.Fatalf("status %v during swaps", st)
		}
	}
	wg.Wait()
	if adj, _ := tab.Resolve(dst); adj.DstMAC[5] != byte(1999%256) {
		t.Fatalf("last snapshot not visible: %x", adj.DstMAC)
	}
}

// BenchmarkNextHopResolve: Resolve over a small table (the shape of a
// router's main table) and over 1000 routes spread over 17 lengths.
func BenchmarkNextHopResolve(b *testing.B) {
	var small Table
	small.Store(testSnapshot())
	links := []Link{{Index: 2, MAC: macA, Port: 0, Up: true}}
	var routes []Route
	var neighs []Neighbour
	for i := 0; i < 1000; i++ {
		bits := 16 + i%17
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(i >> 4), byte(i << 4), 0}), bits).Masked()
		gw := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		routes = append(routes, Route{Prefix: p, Gateway: gw, IfIndex: 2})
		neighs = append(neighs, Neighbour{Addr: gw, IfIndex: 2, MAC: macGW, Valid: true})
	}
	routes = append(routes, Route{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.0.1"), IfIndex: 2})
	var big Table
	big.Store(NewSnapshot(links, routes, neighs))
	var paths []Path // the default route over four gateways
	for i := 1; i <= 4; i++ {
		paths = append(paths, Path{Gateway: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), IfIndex: 2, Weight: uint32(i)})
	}
	routes[len(routes)-1].Paths = paths
	var multi Table
	multi.Store(NewSnapshot(links, routes, neighs))
	for _, bc := range []struct {
		name string
		tab  *Table
		dst  string
	}{
		{"small/gateway-v4", &small, "8.8.8.8"},
		{"small/connected-v4", &small, "10.0.0.7"},
		{"small/connected-v6", &small, "2001:db8::5"},
		{"small/default-v6", &small, "2001:db9::1"},
		{"1000routes/default", &big, "8.8.8.8"},
		{"1000routes/longest", &big, "100.0.0.1"},
		{"1000routes/default-4paths", &multi, "8.8.8.8"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst := netip.MustParseAddr(bc.dst)
			if _, st := bc.tab.Resolve(dst); st == AdjNoRoute {
				b.Fatal("no route")
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				bc.tab.Resolve(dst)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
		})
	}
}

// TestTablePrev: a stored snapshot names the one it replaced (Prev) until
// the next Store, which clears it (no chain of past snapshots stays
// reachable); SameAdjacency compares two snapshots' resolution of an
// address.
func TestTablePrev(t *testing.T) {
	var tab Table
	s1, s2, s3 := testSnapshot(), testSnapshot(), NewSnapshot(nil, nil, nil)
	var prevs []*Snapshot
	tab.OnStore(func(s *Snapshot) { prevs = append(prevs, s.Prev()) })
	tab.Store(s1)
	tab.Store(s2)
	if s2.Prev() != s1 || s1.Prev() != nil {
		t.Fatalf("after two stores: the latest's Prev %p (want %p), the first's %p (want nil)", s2.Prev(), s1, s1.Prev())
	}
	tab.Store(s3)
	if s3.Prev() != s2 || s2.Prev() != nil || s1.Prev() != nil {
		t.Fatal("after a third store: a Prev other than the latest's not cleared")
	}
	if len(prevs) != 3 || prevs[0] != nil || prevs[1] != s1 || prevs[2] != s2 {
		t.Fatalf("OnStore saw Prev %v, want nil, %p, %p", prevs, s1, s2)
	}
	if (*Snapshot)(nil).Prev() != nil {
		t.Fatal("a nil snapshot's Prev")
	}
	for _, c := range []struct {
		a, b *Snapshot
		dst  string
		want bool
	}{
		{s1, s2, "10.0.0.7", true},  // the same tables
		{s2, s3, "10.0.0.7", false}, // resolved, then no route
		{s3, s3, "10.0.0.7", true},  // no route in both
		{s1, s2, "2001:db8::5", true},
	} {
		if got := c.a.SameAdjacency(c.b, netip.MustParseAddr(c.dst)); got != c.want {
			t.Errorf("SameAdjacency(%s) = %v, want %v", c.dst, got, c.want)
		}
	}
}

// refResolve is Resolve written the plain way, for the tests to hold
// snapshots to: the longest of the routes holding dst (of two with one
// prefix, the last), the first link with the route's index, the last
// neighbour entry with the next hop's address and the link's index.
func refResolve(links []Link, routes []Route, neighs []Neighbour, dst netip.Addr) (Adjacency, AdjStatus) {
	dst = dst.Unmap()
	if !dst.Is4() && !dst.Is6() {
		return Adjacency{}, AdjNoRoute
	}
	best := -1
	for i, r := range routes {
		if r.Prefix.IsValid() && r.Prefix.Contains(dst) && (best < 0 || r.Prefix.Bits() >= routes[best].Prefix.Bits()) {
			best = i
		}
	}
	mc := dst.IsMulticast()
	mcLink := slices.IndexFunc(links, func(l Link) bool { return l.Multicast && l.Up && l.Port >= 0 && l.Port <= 0xffff })
	if mc && mcLink >= 0 && (best < 0 || routes[best].Prefix.Bits() == 0) {
		l := links[mcLink]
		return Adjacency{SrcMAC: l.MAC, IfIndex: l.Index, Port: uint16(l.Port), MTU: l.MTU, NextHop: dst, DstMAC: MulticastMAC(dst)}, AdjResolved
	}
	if best < 0 || routes[best].Reject {
		return Adjacency{}, AdjNoRoute
	}
	r := routes[best]
	li := slices.IndexFunc(links, func(l Link) bool { return l.Index == r.IfIndex })
	if li < 0 || links[li].Port < 0 || links[li].Port > 0xffff {
		return Adjacency{IfIndex: r.IfIndex}, AdjKernel
	}
	l := links[li]
	if !l.Up {
		return Adjacency{}, AdjNoRoute
	}
	adj := Adjacency{SrcMAC: l.MAC, IfIndex: l.Index, Port: uint16(l.Port), MTU: l.MTU, NextHop: dst}
	if mc {
		adj.DstMAC = MulticastMAC(dst)
		return adj, AdjResolved
	}
	if r.Gateway.IsValid() {
		adj.NextHop = r.Gateway.Unmap()
	}
	st := AdjIncomplete
	for _, n := range neighs {
		if n.Addr.Unmap() == adj.NextHop && n.IfIndex == l.Index {
			adj.DstMAC, st = [6]byte{}, AdjIncomplete
			if n.Valid {
				adj.DstMAC, st = n.MAC, AdjResolved
			}
		}
	}
	return adj, st
}

// randomTables makes links, routes and neighbour entries over a small
// address space, so that prefixes nest and next hops are shared: links
// the fast path owns or not, up or down, one of them the Multicast link;
// routes connected, through a gateway or rejecting, some through a link
// that is not there; neighbour entries usable or not, some twice.
func randomTables(rng *rand.Rand, nRoutes int) ([]Link, []Route, []Neighbour) {
	links := []Link{
		{Index: 2, MAC: macA, MTU: 1500, Port: 0, Up: true, Multicast: rng.IntN(2) == 0},
		{Index: 3, MAC: macB, MTU: 9000, Port: 1, Up: true},
		{Index: 4, MAC: macB, MTU: 1500, Port: 2, Up: false},
		{Index: 5, Port: -1, Up: true},
		{Index: 3, MAC: macA, MTU: 1400, Port: 3, Up: true}, // a second index 3: the first counts
	}
	addr := func(v6 bool) netip.Addr {
		if v6 {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(rng.IntN(4)), 15: byte(rng.IntN(256))})
		}
		if rng.IntN(8) == 0 {
			return netip.AddrFrom4([4]byte{239, 1, byte(rng.IntN(4)), byte(rng.IntN(256))})
		}
		return netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
	}
	var routes []Route
	for range nRoutes {
		v6 := rng.IntN(3) == 0
		a := addr(v6)
		bits := rng.IntN(a.BitLen() + 1)
		if rng.IntN(2) == 0 {
			bits = a.BitLen() - rng.IntN(11)
		}
		r := Route{Prefix: netip.PrefixFrom(a, bits).Masked(), IfIndex: int32(2 + rng.IntN(5))}
		switch rng.IntN(6) {
		case 0:
			r.Reject = true
		case 1, 2:
		default:
			r.Gateway = addr(v6)
		}
		routes = append(routes, r)
	}
	var neighs []Neighbour
	for range 3 * nRoutes {
		neighs = append(neighs, Neighbour{Addr: addr(rng.IntN(3) == 0), IfIndex: int32(2 + rng.IntN(3)),
			MAC: [6]byte{2, 0, 0, 1, byte(rng.IntN(256)), byte(rng.IntN(256))}, Valid: rng.IntN(4) != 0})
	}
	return links, routes, neighs
}

// TestSnapshotResolveReference: Resolve gives what refResolve does, over
// random tables and addresses (unicast and multicast, both families).
func TestSnapshotResolveReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 42))
	for round := range 50 {
		links, routes, neighs := randomTables(rng, 1+rng.IntN(60))
		s := NewSnapshot(links, routes, neighs)
		for i := range 400 {
			var dst netip.Addr
			switch i % 4 {
			case 0:
				dst = routes[rng.IntN(len(routes))].Prefix.Addr()
			case 1:
				dst = neighs[rng.IntN(len(neighs))].Addr
			case 2:
				dst = netip.AddrFrom4([4]byte{byte([]int{10, 239, 8}[rng.IntN(3)]), 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
			default:
				dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(rng.IntN(4)), 15: byte(rng.IntN(256))})
			}
			adj, st := s.Resolve(dst)
			wadj, wst := refResolve(links, routes, neighs, dst)
			if st != wst || adj != wadj {
				t.Fatalf("round %d: Resolve(%s) = %v %+v, want %v %+v", round, dst, st, adj, wst, wadj)
			}
		}
	}
}

// TestSnapshotMoved: a snapshot marked with the prefixes moved says which
// addresses a route may take elsewhere (MayMove: those the prefixes
// cover, of either family, an IPv4-mapped one as its IPv4 address) and
// which destinations it lost (LostVia); it keeps Lost imprecise. One
// marked with more than MovedMax prefixes, or not marked, may move
// anything and says nothing it lost; one marked with none is MarkLost's.
func TestSnapshotMoved(t *testing.T) {
	fresh := func() *Snapshot { return NewSnapshot(nil, nil, nil) }
	gone := LinkDest{IfIndex: 3, MAC: [6]byte{2, 0, 0, 0, 0, 1}}
	s := fresh().MarkMoved([]netip.Prefix{netip.MustParsePrefix("198.18.7.9/24"), netip.MustParsePrefix("2001:db8:5::/48")}, []LinkDest{gone})
	for a, want := range map[string]bool{
		"198.18.7.200": true, "198.18.8.1": false, "::ffff:198.18.7.1": true, "10.0.0.1": false,
		"2001:db8:5:1::1": true, "2001:db8:6::1": false,
	} {
		if got := s.MayMove(netip.MustParseAddr(a)); got != want {
			t.Errorf("MayMove(%s) = %v, want %v", a, got, want)
		}
	}
	if moved, lost, ok := s.Moved(); !ok || len(moved) != 2 || moved[0] != netip.MustParsePrefix("198.18.7.0/24") || !slices.Equal(lost, []LinkDest{gone}) {
		t.Errorf("Moved = %v %v %v", moved, lost, ok)
	}
	if !s.LostVia(gone) || s.LostVia(LinkDest{IfIndex: 3}) {
		t.Error("LostVia: the destination lost not lost, or another one lost")
	}
	if _, precise := s.Lost(); precise {
		t.Error("Lost precise with routes moved")
	}
	if all := fresh().MarkMoved([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, nil); !all.MayMove(netip.MustParseAddr("203.0.113.1")) ||
		all.MayMove(netip.MustParseAddr("2001:db8::1")) {
		t.Error("a default route moved: MayMove wrong for an IPv4 or an IPv6 address")
	}
	many := make([]netip.Prefix, MovedMax+1)
	for i := range many {
		many[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24)
	}
	for what, s := range map[string]*Snapshot{"too many": fresh().MarkMoved(many, []LinkDest{gone}), "unmarked": fresh()} {
		if _, _, ok := s.Moved(); ok || !s.MayMove(netip.MustParseAddr("10.0.0.1")) || s.LostVia(gone) {
			t.Errorf("%s: Moved known %v, or MayMove false, or LostVia true", what, ok)
		}
	}
	none := fresh().MarkMoved(nil, []LinkDest{gone})
	if lost, precise := none.Lost(); !precise || !slices.Equal(lost, []LinkDest{gone}) || none.MayMove(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("no route moved: Lost %v %v, MayMove true", lost, precise)
	}
}
