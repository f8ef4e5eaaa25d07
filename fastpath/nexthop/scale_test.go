package nexthop

import (
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fullTable fills w, as a dump would, with the links of a router holding
// an Internet table in its kernel: n IPv4 routes (60 % /24, the rest /8
// to /23) through gateway 10.0.0.1 on the fast path's link, the neighbour
// entries of it and of 10.0.0.2, and a connected /24. It returns the
// routes' prefixes.
func fullTable(tb testing.TB, w *Watcher, n int) []netip.Prefix {
	tb.Helper()
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	w.setLink(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "core0", MTU: 1500,
		HardwareAddr: mac, OperState: netlink.OperUp, Flags: net.FlagUp}})
	for i, gw := range []string{"10.0.0.1", "10.0.0.2"} {
		w.applyNeigh(unix.RTM_NEWNEIGH, &netlink.Neigh{LinkIndex: 3, Family: unix.AF_INET, IP: net.ParseIP(gw),
			State: netlink.NUD_REACHABLE, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}})
	}
	w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(netip.MustParsePrefix("10.0.0.0/24"), ""))
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[netip.Prefix]bool{}
	var ps []netip.Prefix
	for len(ps) < n {
		bits := 8 + rng.IntN(16)
		if rng.IntN(10) < 6 {
			bits = 24
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + rng.IntN(212)), byte(rng.Uint32()), byte(rng.Uint32())}), bits).Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(p, "10.0.0.1"))
		ps = append(ps, p)
	}
	return ps
}

// memWatcher is a Watcher of link core0 that no kernel feeds (its tests
// apply events themselves), publishing to tab.
func memWatcher(tb testing.TB) (w *Watcher, tab *Table) {
	tb.Helper()
	tab = new(Table)
	w, err := NewWatcher(WatcherConfig{Links: []string{"core0"}, Table: tab, NoManaged: true})
	if err != nil {
		tb.Fatal(err)
	}
	w.reset()
	return w, tab
}

// gatewayRoute is a main-table route to p through gw ("": connected) on
// interface 3.
func gatewayRoute(p netip.Prefix, gw string) *netlink.Route {
	return &netlink.Route{LinkIndex: 3, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Gw: net.ParseIP(gw), Type: unix.RTN_UNICAST, Table: unix.RT_TABLE_MAIN}
}

// BenchmarkWatcherPublish: what the Watcher spends on a burst of events
// when the kernel holds an Internet table (1M IPv4 routes): applying the
// burst and publishing the snapshot the workers resolve next hops in. A
// burst is one route whose gateway moved, 4096 of them (a BGP peer's
// update burst; the most one burst applies), 4096 routes withdrawn, or
// one neighbour entry whose MAC changed (a gateway replaced). Reports ms per burst, and the
// heap the Watcher and its snapshot hold for the table.
func BenchmarkWatcherPublish(b *testing.B) {
	w, tab := memWatcher(b)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	ps := fullTable(b, w, 1_000_000)
	w.publish()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	heap := float64(m1.HeapAlloc-m0.HeapAlloc)/(1<<20) - float64(cap(ps))*float64(unsafe.Sizeof(ps[0]))/(1<<20)
	flip := 0
	move := func() { // the next route to the other gateway
		w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(ps[flip%len(ps)], []string{"10.0.0.2", "10.0.0.1"}[flip/len(ps)%2]))
		flip++
	}
	for _, bc := range []struct {
		name  string
		burst func()
	}{
		{"route-1", move},
		{"routes-4096", func() {
			for range 4096 {
				move()
			}
		}},
		{"withdraw-4096", func() { // a peer's routes withdrawn; put back untimed
			for k := range 4096 {
				w.applyRoute(unix.RTM_DELROUTE, gatewayRoute(ps[(flip+k)%len(ps)], ""))
			}
		}},
		{"neighbour-1", func() {
			w.applyNeigh(unix.RTM_NEWNEIGH, &netlink.Neigh{LinkIndex: 3, Family: unix.AF_INET, IP: net.ParseIP("10.0.0.2"),
				State: netlink.NUD_REACHABLE, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 2, byte(flip)}})
			flip++
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.burst()
				w.publish()
				if bc.name == "withdraw-4096" {
					b.StopTimer()
					for k := range 4096 {
						w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(ps[(flip+k)%len(ps)], "10.0.0.1"))
					}
					flip += 4096
					w.publish()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/burst")
			b.ReportMetric(heap, "MiB-held")
		})
	}
	if s := tab.Load(); s.Routes() != len(ps)+1 {
		b.Fatalf("%d routes in the last snapshot, want %d", s.Routes(), len(ps)+1)
	}
}

// TestWatcherRouteUpdates: the Watcher's snapshots resolve as snapshots
// built anew from the kernel's routes would, through random route
// changes (several routes per prefix by metric, gateway moves, rejects,
// deletions) published in bursts of every size: a few changes, which
// the Watcher makes on a copy of the paths they touch; more than
// rebuildMin + size/rebuildFactor, for which it copies the whole trie;
// a start over (reset, as a resync does); and a link deleted with its
// routes. Every snapshot published
// still resolves as it did when it was published after all that followed
// (the trie it holds is never changed), and the Watcher's count of the
// routes through each gateway (what manage reads) stays true.
func TestWatcherRouteUpdates(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	w, tab := memWatcher(t)
	link := netlink.LinkAttrs{Index: 3, Name: "core0", MTU: 1500, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 9},
		OperState: netlink.OperUp, Flags: net.FlagUp}
	link4 := link
	link4.Index, link4.Name, link4.HardwareAddr = 4, "core1", net.HardwareAddr{2, 0, 0, 0, 0, 4}
	ifindexes := []int32{3, 4}
	gws := []string{"", "10.0.0.1", "10.0.0.2", "10.0.0.3", "2001:db8::1", "2001:db8::2"} // "": connected
	var links []Link
	var neighs []Neighbour
	model := map[netip.Prefix]map[int]Route{} // the kernel's routes: prefix → priority → route
	setup := func() {
		w.setLink(&netlink.Device{LinkAttrs: link})
		if len(ifindexes) > 1 {
			w.setLink(&netlink.Device{LinkAttrs: link4})
		}
		for i, gw := range gws[1:4] { // 10.0.0.3 and the IPv6 gateways stay unresolved
			if i < 2 {
				w.applyNeigh(unix.RTM_NEWNEIGH, &netlink.Neigh{LinkIndex: 3, Family: unix.AF_INET, IP: net.ParseIP(gw),
					State: netlink.NUD_REACHABLE, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}})
			}
		}
		links = []Link{{Index: 3, MAC: [6]byte(link.HardwareAddr), MTU: 1500, Port: 0, Up: true}}
		if len(ifindexes) > 1 {
			links = append(links, Link{Index: 4, MAC: [6]byte(link4.HardwareAddr), MTU: 1500, Port: -1, Up: true})
		}
		neighs = []Neighbour{{Addr: netip.MustParseAddr("10.0.0.1"), IfIndex: 3, MAC: [6]byte{2, 0, 0, 0, 1, 0}, Valid: true},
			{Addr: netip.MustParseAddr("10.0.0.2"), IfIndex: 3, MAC: [6]byte{2, 0, 0, 0, 1, 1}, Valid: true}}
	}
	setup()
	var pool []netip.Prefix
	for range 3000 {
		if rng.IntN(4) == 0 {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, byte(rng.IntN(256)), byte(rng.IntN(256))})
			pool = append(pool, netip.PrefixFrom(a, 40+rng.IntN(25)).Masked())
			continue
		}
		a := netip.AddrFrom4([4]byte{byte(11 + rng.IntN(8)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		pool = append(pool, netip.PrefixFrom(a, 8+rng.IntN(17)).Masked())
	}
	nl := func(p netip.Prefix, r Route, prio int) *netlink.Route {
		gw := ""
		if r.Gateway.IsValid() {
			gw = r.Gateway.String()
		}
		x := gatewayRoute(p, gw)
		x.Priority, x.LinkIndex = prio, int(r.IfIndex)
		if r.Reject {
			x.Type, x.LinkIndex = unix.RTN_BLACKHOLE, 0
		}
		return x
	}
	change := func() {
		p := pool[rng.IntN(len(pool))]
		prio := rng.IntN(3) * 100
		if rng.IntN(4) == 0 {
			w.applyRoute(unix.RTM_DELROUTE, nl(p, Route{}, prio))
			delete(model[p], prio)
			return
		}
		r := Route{Prefix: p, IfIndex: ifindexes[rng.IntN(len(ifindexes))]}
		if g := rng.IntN(len(gws) + 1); g == len(gws) {
			r.Reject, r.IfIndex = true, 0
		} else if a, err := netip.ParseAddr(gws[g]); err == nil {
			if a.Is4() != p.Addr().Is4() {
				return
			}
			r.Gateway = a
		}
		w.applyRoute(unix.RTM_NEWROUTE, nl(p, r, prio))
		if model[p] == nil {
			model[p] = map[int]Route{}
		}
		model[p][prio] = r
	}
	// reference is the kernel's table as NewSnapshot would be given it: the
	// route of lowest priority of each prefix.
	reference := func() *Snapshot {
		var routes []Route
		gwCount := map[neighID]int{}
		for _, byPrio := range model {
			best := -1
			for prio, r := range byPrio {
				if best < 0 || prio < best {
					best = prio
				}
				if r.Gateway.IsValid() && !r.Reject {
					gwCount[neighID{addr: r.Gateway, ifindex: r.IfIndex}]++
				}
			}
			if best >= 0 {
				routes = append(routes, byPrio[best])
			}
		}
		if !maps.Equal(gwCount, w.gateways) {
			t.Fatalf("routes through each gateway: %v, want %v", w.gateways, gwCount)
		}
		return NewSnapshot(links, routes, neighs)
	}
	probes := func() []netip.Addr {
		var ds []netip.Addr
		for _, p := range pool {
			ds = append(ds, p.Addr(), p.Addr().Prev())
		}
		return ds
	}()
	check := func(what string, got, want *Snapshot) {
		t.Helper()
		for _, d := range probes {
			if !got.SameAdjacency(want, d) {
				a, st := got.Resolve(d)
				b, wst := want.Resolve(d)
				t.Fatalf("%s: %s resolves as %v %+v, want %v %+v", what, d, st, a, wst, b)
			}
		}
		if got.Routes() != want.Routes() {
			t.Fatalf("%s: %d routes, want %d", what, got.Routes(), want.Routes())
		}
	}
	type published struct {
		what      string
		got, want *Snapshot
	}
	var all []published
	for i, burst := range []int{2500, 1, 1, 3, 10, 600, 1, 40, 900, 1, 5, 0, 1, 300, 2, -1, 1, 700, 3} {
		what := fmt.Sprintf("burst %d of %d changes", i, burst)
		if burst == 0 { // a resync: start over from the kernel's tables
			what = fmt.Sprintf("burst %d, a start over", i)
			w.reset()
			setup()
			for p, byPrio := range model {
				for prio, r := range byPrio {
					w.applyRoute(unix.RTM_NEWROUTE, nl(p, r, prio))
				}
			}
		}
		if burst < 0 { // link 4 deleted: the kernel drops its routes without an event
			what = fmt.Sprintf("burst %d, a link deleted", i)
			w.applyLink(netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}, Link: &netlink.Device{LinkAttrs: link4}})
			ifindexes, links = ifindexes[:1], links[:1]
			for _, byPrio := range model {
				maps.DeleteFunc(byPrio, func(_ int, r Route) bool { return r.IfIndex == 4 })
			}
		}
		for range burst {
			change()
		}
		prev := tab.Load()
		w.publish()
		s := tab.Load()
		want := reference()
		check(what, s, want)
		all = append(all, published{what, s, want})
		// What the snapshot says it moved: said for a few routes changed,
		// not for a start over or a link deleted, and true of every probe.
		moved, lost, ok := s.Moved()
		if wantOK := burst >= 1 && burst <= MovedMax; ok != wantOK && (burst <= 0 || wantOK) {
			t.Fatalf("%s: Moved says %v (%d prefixes), want %v", what, ok, len(moved), wantOK)
		}
		if _, precise := s.Lost(); precise && len(moved) > 0 {
			t.Fatalf("%s: Lost is precise with %d routes moved", what, len(moved))
		}
		if !ok || prev == nil {
			continue
		}
		for _, d := range probes {
			a, st := prev.Resolve(d)
			if slices.ContainsFunc(moved, func(p netip.Prefix) bool { return p.Contains(d) }) ||
				st == AdjResolved && slices.Contains(lost, LinkDest{IfIndex: a.IfIndex, MAC: a.DstMAC}) {
				continue
			}
			if !s.SameAdjacency(prev, d) {
				b, sst := s.Resolve(d)
				t.Fatalf("%s: %s, outside the %d prefixes moved, resolves as %v %+v, before as %v %+v", what, d, len(moved), sst, b, st, a)
			}
		}
	}
	for _, p := range all {
		check(p.what+", checked again at the end", p.got, p.want)
	}
}

// TestWatcherPublishGap: a change after a quiet spell is published at
// once; one within PublishGap of the last snapshot waits for the rest of
// the gap (Run holds it on a timer, applying whatever else comes
// meanwhile), or of the time the last snapshot took to make when that
// is longer; nothing changed, nothing to publish; a negative gap
// publishes every burst.
func TestWatcherPublishGap(t *testing.T) {
	var tab Table
	w, err := NewWatcher(WatcherConfig{Links: []string{"core0"}, Table: &tab, NoManaged: true, PublishGap: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	w.now = func() time.Time { return clock }
	w.reset()
	p := netip.MustParsePrefix("192.0.2.0/24")
	gw := 0
	change := func() {
		gw++
		w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(p, fmt.Sprintf("10.0.0.%d", gw)))
	}
	// The first snapshot builds the routes' trie anew, which takes long
	// and says nothing of what the next ones take: it sets no gap of its
	// own.
	change()
	tab.OnStore(func(*Snapshot) { clock = clock.Add(time.Second) })
	w.publish()
	tab.OnStore(nil)
	clock = clock.Add(20 * time.Millisecond)
	if got := w.publishDue(); got != -1 {
		t.Fatalf("nothing changed: publishDue %v, want -1", got)
	}
	for i, step := range []struct {
		advance time.Duration
		change  bool
		want    time.Duration
	}{
		{0, true, 0}, // the first change: at once
		{3 * time.Millisecond, true, 7 * time.Millisecond},
		{5 * time.Millisecond, true, 2 * time.Millisecond}, // more held changes: the same deadline
		{2 * time.Millisecond, false, 0},                   // the gap over: publish
		{time.Millisecond, false, -1},                      // published: nothing left
		{50 * time.Millisecond, true, 0},                   // quiet, then a change: at once
	} {
		clock = clock.Add(step.advance)
		if step.change {
			change()
		}
		got := w.publishDue()
		if got != step.want {
			t.Fatalf("step %d: publishDue %v, want %v", i, got, step.want)
		}
		if got == 0 {
			w.publish()
		}
	}
	if n := w.Stats().Snapshots; n != 4 {
		t.Fatalf("%d snapshots, want 4", n)
	}
	// A snapshot that takes longer to make than the gap (its OnStore
	// function, here) makes the next wait as long as it took.
	tab.OnStore(func(*Snapshot) { clock = clock.Add(30 * time.Millisecond) })
	clock = clock.Add(time.Second)
	change()
	if got := w.publishDue(); got != 0 {
		t.Fatalf("after a quiet spell: publishDue %v, want 0", got)
	}
	w.publish()
	tab.OnStore(nil)
	clock = clock.Add(12 * time.Millisecond)
	change()
	if got := w.publishDue(); got != 18*time.Millisecond {
		t.Fatalf("after a snapshot that took 30 ms: publishDue %v, want 18ms", got)
	}
	w.cfg.PublishGap = -1
	change()
	if got := w.publishDue(); got != 0 {
		t.Fatalf("no gap: publishDue %v, want 0", got)
	}
}

// TestWatcherRoutesWithoutEgress: a unicast route that names neither an
// interface nor a nexthop object (which the kernel does not make) resolves
// as AdjKernel, is counted in RoutesWithoutEgress as of the last snapshot,
// and is warned of once until there are none again; routes that reject or
// go through an object are not counted.
func TestWatcherRoutesWithoutEgress(t *testing.T) {
	var tab Table
	logs := &logBuf{t: t}
	w, err := NewWatcher(WatcherConfig{Table: &tab, NoManaged: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.reset()
	bare := func(p string) rtRoute {
		return rtRoute{prefix: netip.MustParsePrefix(p), table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST}
	}
	step := func(typ uint16, r rtRoute, want uint64, warnings int) {
		t.Helper()
		w.applyRt(typ, r)
		w.publish()
		if n := w.Stats().RoutesWithoutEgress; n != want {
			t.Fatalf("after %v: RoutesWithoutEgress %d, want %d", r.prefix, n, want)
		}
		if n := strings.Count(logs.String(), "name neither an interface"); n != warnings {
			t.Fatalf("after %v: %d warnings, want %d", r.prefix, n, warnings)
		}
	}
	obj, reject := bare("10.2.0.0/16"), bare("10.3.0.0/16")
	obj.nhid, reject.typ = 9, unix.RTN_BLACKHOLE
	step(unix.RTM_NEWROUTE, obj, 0, 0)
	step(unix.RTM_NEWROUTE, reject, 0, 0)
	step(unix.RTM_NEWROUTE, bare("10.0.0.0/16"), 1, 1)
	if _, st := tab.Resolve(netip.MustParseAddr("10.0.0.1")); st != AdjKernel {
		t.Errorf("a route without an interface resolves %v, want kernel", st)
	}
	step(unix.RTM_NEWROUTE, bare("10.1.0.0/16"), 2, 1)
	step(unix.RTM_DELROUTE, bare("10.0.0.0/16"), 1, 1)
	step(unix.RTM_DELROUTE, bare("10.1.0.0/16"), 0, 1)
	step(unix.RTM_NEWROUTE, bare("10.0.0.0/16"), 1, 2)
}

// applyRoute applies a route as the netlink library's Route describes it,
// which the tests build; the watcher's own subscription and dump give
// applyRt what they read.
func (w *Watcher) applyRoute(typ uint16, r *netlink.Route) {
	e := rtRoute{table: uint32(r.Table), typ: uint8(r.Type), priority: r.Priority, tos: r.Tos,
		ifindex: int32(r.LinkIndex), gw: toAddr(r.Gw)}
	for _, p := range r.MultiPath {
		if p != nil {
			e.paths = append(e.paths, member{hop: nextHop{gw: toAddr(p.Gw), ifindex: int32(p.LinkIndex)}, weight: uint32(p.Hops) + 1})
		}
	}
	if len(e.paths) > 0 {
		e.ifindex, e.gw = e.paths[0].hop.ifindex, e.paths[0].hop.gw
	}
	if len(e.paths) < 2 {
		e.paths = nil
	}
	switch {
	case r.Dst != nil:
		a := toAddr(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		if !a.IsValid() {
			w.events.Add(1)
			return
		}
		e.prefix = netip.PrefixFrom(a, ones).Masked()
	case r.Family == unix.AF_INET:
		e.prefix = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case r.Family == unix.AF_INET6:
		e.prefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	w.applyRt(typ, e)
}

// TestWatcherObjectRouteOutlivesLink: a route through a nexthop object
// keeps the object's id where other routes keep their interface; deleting
// the interface of that index leaves the route (and its object, on
// another interface) alone.
func TestWatcherObjectRouteOutlivesLink(t *testing.T) {
	w, err := NewWatcher(WatcherConfig{Table: new(Table), NoManaged: true})
	if err != nil {
		t.Fatal(err)
	}
	w.reset()
	for _, idx := range []int{3, 4} {
		w.setLink(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx, Name: fmt.Sprint("l", idx), MTU: 1500, Flags: net.FlagUp, OperState: netlink.OperUp}})
	}
	w.applyNexthop(rtEvent{typ: unix.RTM_NEWNEXTHOP, id: 3, obj: nhObject{hop: nextHop{gw: netip.MustParseAddr("10.0.0.1"), ifindex: 4}}})
	p := netip.MustParsePrefix("192.0.2.0/24")
	w.applyRt(unix.RTM_NEWROUTE, rtRoute{prefix: p, table: unix.RT_TABLE_MAIN, typ: unix.RTN_UNICAST, nhid: 3})
	w.applyLink(netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}, Link: &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 3}}})
	if len(w.routesOf(p)) != 1 || w.objects[3].hop.ifindex != 4 {
		t.Fatalf("after link 3 went: routes %v, object 3 %+v; want the route through object 3 kept", w.routesOf(p), w.objects[3])
	}
	w.applyLink(netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_DELLINK}, Link: &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 4}}})
	if len(w.routesOf(p)) != 0 {
		t.Fatalf("after link 4, object 3's, went: routes %v, want none", w.routesOf(p))
	}
}
