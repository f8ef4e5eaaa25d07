package nexthop

import (
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// spreadSnapshot is a snapshot with routes through nexthop groups and a
// multipath route; link 4 is down when down4.
func spreadSnapshot(down4 bool, extra ...Neighbour) *Snapshot {
	links := []Link{
		{Index: 2, MAC: macA, MTU: 1500, Port: 0, Up: true},
		{Index: 3, MAC: macB, MTU: 1500, Port: 1, Up: true},
		{Index: 4, MAC: macB, MTU: 1500, Port: 2, Up: !down4},
	}
	gw := func(s string, idx int32) nextHop { return nextHop{gw: netip.MustParseAddr(s), ifindex: idx} }
	objs := map[uint32]nhObject{
		1: {hop: gw("10.0.0.1", 2)}, 2: {hop: gw("10.0.1.1", 3)}, 3: {hop: gw("10.0.2.1", 4)},
		10: {group: []grpEntry{{1, 1}, {2, 3}}},
		11: {group: []grpEntry{{1, 1}, {3, 1}}},
		13: {group: []grpEntry{{3, 1}, {99, 1}}}, // 99: an object the snapshot lacks
		14: {group: []grpEntry{{1, 1}, {2, 2}, {3, 1}}},
	}
	paths := map[uint32][]member{7: {{gw("10.0.0.1", 2), 1}, {gw("10.0.1.1", 3), 1}}}
	t, ht := new(routeTrie), newHopTable()
	for p, h := range map[string]nextHop{"10.1.0.0/16": viaObj(10), "10.2.0.0/16": viaObj(11), "10.3.0.0/16": viaObj(13),
		"10.4.0.0/16": viaPaths(7), "10.5.0.0/16": viaObj(14), "2001:db8:4::/48": viaPaths(7), "10.7.0.0/16": viaObj(7)} {
		t.Insert(netip.MustParsePrefix(p), ht.hold(h))
	}
	neighs := append([]Neighbour{
		{Addr: netip.MustParseAddr("10.0.0.1"), IfIndex: 2, MAC: macGW, Valid: true},
		{Addr: netip.MustParseAddr("10.0.1.1"), IfIndex: 3, MAC: macB, Valid: true},
		{Addr: netip.MustParseAddr("10.0.2.1"), IfIndex: 4, MAC: macH, Valid: true},
	}, extra...)
	return newSnapshot(links, t, ht.view(), neighs, objs, paths)
}

// sample is n addresses of prefix p, drawn with a fixed seed.
func sample(p string, n int) []netip.Addr {
	pfx := netip.MustParsePrefix(p)
	r := rand.New(rand.NewPCG(1, uint64(n)))
	out := make([]netip.Addr, n)
	for i := range out {
		b, from := pfx.Addr().As16(), pfx.Bits()/8 // whole bytes of the prefix
		if pfx.Addr().Is4() {
			from += 12
		}
		for j := from; j < 16; j++ {
			b[j] = byte(r.Uint32())
		}
		a := netip.AddrFrom16(b)
		if pfx.Addr().Is4() {
			a = a.Unmap()
		}
		out[i] = a
	}
	return out
}

// shares resolves dsts in s and returns the share of each MAC they
// resolved to (the zero MAC: not resolved).
func shares(s *Snapshot, dsts []netip.Addr) map[[6]byte]float64 {
	m := map[[6]byte]float64{}
	for _, d := range dsts {
		adj, st := s.Resolve(d)
		if st != AdjResolved {
			adj.DstMAC = [6]byte{}
		}
		m[adj.DstMAC] += 1 / float64(len(dsts))
	}
	return m
}

// TestSetSpread: a route through a nexthop group or a multipath route
// spreads destinations over the members in proportion to their weights
// (hash-threshold); members whose link is down get none, and a set
// without a live member resolves through its first as no route; a
// destination's member is the same in every snapshot that leaves the
// links alone (the workers' memos and the kernel offload see no flow
// move on a neighbour change), and resolving through a set does not
// allocate.
func TestSetSpread(t *testing.T) {
	const n = 20000
	near := func(got, want float64) bool { return math.Abs(got-want) < 0.02 }
	s, sDown := spreadSnapshot(false), spreadSnapshot(true)
	for _, c := range []struct {
		name   string
		s      *Snapshot
		prefix string
		want   map[[6]byte]float64
	}{
		{"group 1:3", s, "10.1.0.0/16", map[[6]byte]float64{macGW: 0.25, macB: 0.75}},
		{"group 1:1", s, "10.2.0.0/16", map[[6]byte]float64{macGW: 0.5, macH: 0.5}},
		{"group 1:1, link 4 down", sDown, "10.2.0.0/16", map[[6]byte]float64{macGW: 1}},
		{"group of a member whose link is down and one missing", sDown, "10.3.0.0/16", map[[6]byte]float64{{}: 1}},
		{"group of a member and one missing", s, "10.3.0.0/16", map[[6]byte]float64{macH: 1}},
		{"multipath", s, "10.4.0.0/16", map[[6]byte]float64{macGW: 0.5, macB: 0.5}},
		{"multipath, IPv6 destinations", s, "2001:db8:4::/48", map[[6]byte]float64{macGW: 0.5, macB: 0.5}},
		{"group 1:2:1", s, "10.5.0.0/16", map[[6]byte]float64{macGW: 0.25, macB: 0.5, macH: 0.25}},
		{"group 1:2:1, link 4 down", sDown, "10.5.0.0/16", map[[6]byte]float64{macGW: 1. / 3, macB: 2. / 3}},
		{"a nexthop object's id is not a multipath route's", s, "10.7.0.0/16", map[[6]byte]float64{{}: 1}},
	} {
		got := shares(c.s, sample(c.prefix, n))
		for mac, w := range c.want {
			if !near(got[mac], w) {
				t.Errorf("%s: shares %v, want %v", c.name, got, c.want)
				break
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: shares %v, want %v", c.name, got, c.want)
		}
	}
	if _, st := s.Resolve(netip.MustParseAddr("10.7.0.1")); st != AdjKernel {
		t.Errorf("a route through object 7, which is not one: %v, want kernel", st)
	}

	// Stable: a snapshot with another neighbour resolves every destination alike.
	s2 := spreadSnapshot(false, Neighbour{Addr: netip.MustParseAddr("10.0.0.9"), IfIndex: 2, MAC: macH, Valid: true})
	for _, p := range []string{"10.1.0.0/16", "10.5.0.0/16", "2001:db8:4::/48"} {
		for _, d := range sample(p, 2000) {
			a1, _ := s.Resolve(d)
			a2, _ := s2.Resolve(d)
			if a1 != a2 {
				t.Fatalf("%v: %+v, then %+v in a snapshot that changed no link", d, a1, a2)
			}
		}
	}
	d := netip.MustParseAddr("10.1.0.1")
	if n := testing.AllocsPerRun(100, func() { s.Resolve(d) }); n != 0 {
		t.Errorf("Resolve through a group allocates %v", n)
	}
}

// TestWatcherPaths: multipath routes keep one set of paths per distinct
// set of paths, which goes with the last route through it; their
// gateways are all counted (and so kept resolved by managed neighbours);
// the kernel's message that one path of an IPv6 route went deletes that
// path alone, down to a plain route; the deletion of a link deletes an
// IPv4 multipath route through it whole, as the kernel does silently,
// and leaves an IPv6 one to the kernel's message; nothing outlives the
// routes.
func TestWatcherPaths(t *testing.T) {
	var tab Table
	w, err := NewWatcher(WatcherConfig{Table: &tab, NoManaged: true, Links: []string{"l3", "l4"}})
	if err != nil {
		t.Fatal(err)
	}
	w.reset()
	for _, idx := range []int{3, 4} {
		w.setLink(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx, Name: fmt.Sprint("l", idx), MTU: 1500, Flags: net.FlagUp, OperState: netlink.OperUp}})
	}
	route := func(p string, ps ...member) rtRoute {
		r := rtRoute{prefix: netip.MustParsePrefix(p), table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST, priority: 1024}
		r.ifindex, r.gw = ps[0].hop.ifindex, ps[0].hop.gw
		if len(ps) > 1 {
			r.paths = ps
		}
		return r
	}
	a4, b4 := path("10.0.0.1", 3, 1), path("10.0.1.1", 4, 2)
	a6, b6, c6 := path("fe80::a", 3, 1), path("fe80::b", 4, 1), path("fe80::c", 3, 1)
	gws := func(want ...member) {
		t.Helper()
		if len(w.gateways) != len(want) {
			t.Fatalf("gateways %v, want %v", w.gateways, want)
		}
		for _, m := range want {
			if w.gateways[neighID{m.hop.gw, m.hop.ifindex}] == 0 {
				t.Fatalf("gateways %v: %v missing", w.gateways, m.hop.gw)
			}
		}
	}
	nextHops := func(prefix string) map[netip.Addr]int {
		w.publish()
		m := map[netip.Addr]int{}
		for _, d := range sample(prefix, 400) {
			adj, st := tab.Resolve(d)
			if st == AdjIncomplete {
				m[adj.NextHop]++
			}
		}
		return m
	}

	w.applyRt(unix.RTM_NEWROUTE, route("10.9.0.0/16", a4, b4))
	w.applyRt(unix.RTM_NEWROUTE, route("10.8.0.0/16", a4, b4))
	if len(w.paths) != 1 || len(w.pathIDs) != 1 {
		t.Fatalf("two routes with the same paths: sets %v", w.paths)
	}
	gws(a4, b4)
	if m := nextHops("10.9.0.0/16"); len(m) != 2 || m[b4.hop.gw] < m[a4.hop.gw] {
		t.Fatalf("next hops of 10.9/16, paths 1:2: %v", m)
	}
	w.applyRt(unix.RTM_NEWROUTE, route("10.8.0.0/16", a4))
	w.applyRt(unix.RTM_NEWROUTE, route("10.9.0.0/16", b4, a4)) // another order: another set
	id, _ := w.routesOf(netip.MustParsePrefix("10.9.0.0/16"))[0].pathSet()
	if len(w.paths) != 1 || w.paths[id][0] != b4 {
		t.Fatalf("after the routes changed: sets %v, want the one of 10.9/16 (b, a) alone", w.paths)
	}

	w.applyRt(unix.RTM_NEWROUTE, route("2001:db8:9::/48", a6, b6, c6))
	if m := nextHops("2001:db8:9::/48"); len(m) != 3 {
		t.Fatalf("next hops of 2001:db8:9::/48: %v, want 3", m)
	}
	w.applyRt(unix.RTM_DELROUTE, route("2001:db8:9::/48", b6))
	if m := nextHops("2001:db8:9::/48"); len(m) != 2 || m[b6.hop.gw] != 0 {
		t.Fatalf("after path b went: %v", m)
	}
	gws(a4, b4, a6, c6)
	w.applyRt(unix.RTM_DELROUTE, route("2001:db8:9::/48", a6))
	if h := w.routesOf(netip.MustParsePrefix("2001:db8:9::/48"))[0]; h != c6.hop {
		t.Fatalf("after path a went: %+v, want the plain route through c", h)
	}
	if len(w.paths) != 1 {
		t.Fatalf("sets %v, want 10.9/16's alone", w.paths)
	}
	w.applyRt(unix.RTM_DELROUTE, route("2001:db8:9::/48", b6)) // not its path: the route goes
	if len(w.routesOf(netip.MustParsePrefix("2001:db8:9::/48"))) != 0 {
		t.Fatal("a deletion naming a path the route lacks left it")
	}

	w.applyRt(unix.RTM_NEWROUTE, route("2001:db8:9::/48", a6, b6))
	w.applyLink(netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}, Link: &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 4}}})
	if len(w.routesOf(netip.MustParsePrefix("10.9.0.0/16"))) != 0 {
		t.Fatal("an IPv4 multipath route through a deleted link kept")
	}
	if len(w.routesOf(netip.MustParsePrefix("2001:db8:9::/48"))) != 1 {
		t.Fatal("an IPv6 multipath route through a deleted link gone before the kernel says")
	}
	w.applyRt(unix.RTM_DELROUTE, route("2001:db8:9::/48", b6))
	w.applyRt(unix.RTM_DELROUTE, route("2001:db8:9::/48", a6))
	w.applyRt(unix.RTM_DELROUTE, route("10.8.0.0/16", a4))
	if w.routes.prefixes() != 0 || len(w.hops.ids) != 0 || len(w.paths) != 0 || len(w.pathIDs) != 0 || len(w.pathRefs) != 0 || len(w.gateways) != 0 {
		t.Fatalf("left after every route went: routes %d, sets %v %v %v, gateways %v", w.routes.prefixes(), w.paths, w.pathIDs, w.pathRefs, w.gateways)
	}
}

// macShares resolves dsts in tab and says how many went to each MAC, and
// fails unless they all resolved.
func macShares(tab *Table, dsts []netip.Addr) (map[string]int, error) {
	m := map[string]int{}
	for _, d := range dsts {
		adj, st := tab.Resolve(d)
		if st != AdjResolved {
			return m, fmt.Errorf("%v: %v", d, st)
		}
		m[net.HardwareAddr(adj.DstMAC[:]).String()]++
	}
	return m, nil
}

// sharesAre is a WaitFor condition: dsts resolve to the MACs of want,
// each MAC's count within a tenth of len(dsts) of want's share of them.
func sharesAre(tab *Table, dsts []netip.Addr, want map[string]float64) func() error {
	return func() error {
		m, err := macShares(tab, dsts)
		if err != nil {
			return err
		}
		for mac, n := range m {
			if math.Abs(float64(n)/float64(len(dsts))-want[mac]) > 0.1 {
				return fmt.Errorf("resolved to %v, want shares %v", m, want)
			}
		}
		for mac := range want {
			if m[mac] == 0 {
				return fmt.Errorf("resolved to %v, want shares %v", m, want)
			}
		}
		return nil
	}
}

// TestWatcherMultipath: with the kernel, routes spread destinations over
// their paths by weight, from the dump and from events: an IPv4
// multipath route, an IPv6 one whose paths are deleted one at a time,
// and a route through a weighted nexthop group. A path whose link goes
// down gets no destination, of which the kernel says nothing, and gets
// them back when it is up; the deletion of the link takes the IPv4 route
// with it, as the kernel does silently. A second watcher, from a dump
// alone, resolves every destination as the first one does from events.
func TestWatcherMultipath(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		testkit.Unavailable(t, "no ip(8) (iproute2): %v", err)
	}
	ns, h, l := vethNS(t, "mp", "10.84.0.1/24")
	sfx := fmt.Sprintf("%d%d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	l2name := "mpC" + sfx
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: l2name}, PeerName: "mpD" + sfx}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	ip := func(args ...string) { execIn(t, ns, "ip", args...) }
	name := l.Attrs().Name
	ip("link", "set", l2name, "up")
	ip("link", "set", "mpD"+sfx, "up")
	ip("addr", "add", "10.85.0.1/24", "dev", l2name)
	ip("-6", "addr", "add", "2001:db8:84::1/64", "dev", name, "nodad")
	ip("-6", "addr", "add", "2001:db8:85::1/64", "dev", l2name, "nodad")
	mac := func(i byte) string { return net.HardwareAddr{2, 0, 0, 0, 0x84, i}.String() }
	for _, n := range []struct {
		addr, dev string
		i         byte
	}{{"10.84.0.2", name, 2}, {"10.84.0.3", name, 3}, {"10.85.0.2", l2name, 4}, {"2001:db8:84::2", name, 5}, {"2001:db8:85::2", l2name, 6}} {
		ip("neigh", "replace", n.addr, "lladdr", mac(n.i), "dev", n.dev, "nud", "permanent")
	}
	ip("route", "add", "10.200.0.0/16", "nexthop", "via", "10.84.0.2", "dev", name, "weight", "1",
		"nexthop", "via", "10.85.0.2", "dev", l2name, "weight", "3")

	var tab Table
	logs := &logBuf{t: t}
	w, err := NewWatcher(WatcherConfig{Links: []string{name, l2name}, Namespace: &ns, Table: &tab, NoManaged: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w)
	v4, v4g, v6 := sample("10.200.0.0/16", 400), sample("10.201.0.0/16", 400), sample("2001:db8:99::/48", 400)
	testkit.WaitFor(t, "an IPv4 multipath route 1:3, from the dump", sharesAre(&tab, v4, map[string]float64{mac(2): 0.25, mac(4): 0.75}))

	ip("-6", "route", "add", "2001:db8:99::/48", "nexthop", "via", "2001:db8:84::2", "dev", name,
		"nexthop", "via", "2001:db8:85::2", "dev", l2name)
	testkit.WaitFor(t, "an IPv6 multipath route 1:1", sharesAre(&tab, v6, map[string]float64{mac(5): 0.5, mac(6): 0.5}))
	ip("nexthop", "add", "id", "41", "via", "10.84.0.3", "dev", name)
	ip("nexthop", "add", "id", "42", "via", "10.85.0.2", "dev", l2name)
	ip("nexthop", "add", "id", "50", "group", "41,3/42,1")
	ip("route", "add", "10.201.0.0/16", "nhid", "50")
	testkit.WaitFor(t, "a route through a nexthop group 3:1", sharesAre(&tab, v4g, map[string]float64{mac(3): 0.75, mac(4): 0.25}))

	// A dump reads the same as the events did.
	var tab2 Table
	w2, err := NewWatcher(WatcherConfig{Links: []string{name, l2name}, Namespace: &ns, Table: &tab2, NoManaged: true})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w2)
	for _, d := range slices.Concat(v4, v4g, v6) {
		a1, s1 := tab.Resolve(d)
		a2, s2 := tab2.Resolve(d)
		if a1 != a2 || s1 != s2 {
			t.Fatalf("%v: %v %+v from events, %v %+v from a dump", d, s1, a1, s2, a2)
		}
	}

	ip("-6", "route", "del", "2001:db8:99::/48", "via", "2001:db8:85::2", "dev", l2name)
	testkit.WaitFor(t, "the IPv6 route after one path was deleted", sharesAre(&tab, v6, map[string]float64{mac(5): 1}))

	ip("link", "set", l2name, "down")
	testkit.WaitFor(t, "the IPv4 route with a path's link down", sharesAre(&tab, v4, map[string]float64{mac(2): 1}))
	testkit.WaitFor(t, "the group with a member's link down", sharesAre(&tab, v4g, map[string]float64{mac(3): 1}))
	ip("link", "set", l2name, "up")
	ip("neigh", "replace", "10.85.0.2", "lladdr", mac(4), "dev", l2name, "nud", "permanent") // flushed with the link
	testkit.WaitFor(t, "the IPv4 route with the link up again", sharesAre(&tab, v4, map[string]float64{mac(2): 0.25, mac(4): 0.75}))
	ip("link", "del", l2name)
	testkit.WaitFor(t, "the IPv4 multipath route gone with a path's link", resolveIs(&tab, "10.200.0.1", AdjNoRoute, nil))
	if n := w.Stats().RoutesWithoutEgress; n != 0 {
		t.Errorf("RoutesWithoutEgress %d, want 0", n)
	}
}
