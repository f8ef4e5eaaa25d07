package nexthop

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// routesOf is prefix p's routes' next hops in w, its first route's first.
func (w *Watcher) routesOf(p netip.Prefix) []nextHop {
	var hs []nextHop
	for _, r := range w.routes.list(keyOf(p), nil) {
		hs = append(hs, w.hops.hop(r.hop))
	}
	return hs
}

// TestPrefixKey: a prefix and its key go both ways; the families' default
// routes, and prefixes of one address and different lengths, have
// different keys.
func TestPrefixKey(t *testing.T) {
	seen := map[prefixKey]netip.Prefix{}
	for _, s := range []string{"0.0.0.0/0", "::/0", "10.0.0.0/8", "10.0.0.0/24", "10.0.0.0/32", "255.255.255.255/32",
		"::ffff:10.0.0.0/104", "2001:db8::/32", "2001:db8::/48", "2001:db8::1/128", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"} {
		p := netip.MustParsePrefix(s)
		k := keyOf(p)
		if got := k.prefix(); got != p {
			t.Errorf("%v: back from its key %+v as %v", p, k, got)
		}
		if o, dup := seen[k]; dup {
			t.Errorf("%v and %v: one key %+v", p, o, k)
		}
		seen[k] = p
	}
}

// TestRouteTable: random routes of a few prefixes, priorities and TOS put
// and dropped, against a plain map: every route found, the best one the
// lowest priority then TOS, also when all prefixes' are walked (bests).
func TestRouteTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	type alt struct {
		priority uint32
		tos      uint8
	}
	model := map[prefixKey]map[alt]uint32{}
	tab := newRouteTable()
	keys := []prefixKey{keyOf(netip.MustParsePrefix("0.0.0.0/0")), keyOf(netip.MustParsePrefix("::/0")), keyOf(netip.MustParsePrefix("10.1.0.0/16"))}
	for step := range 20000 {
		k := keys[rng.IntN(len(keys))]
		a := alt{uint32(rng.IntN(4) * 100), uint8(rng.IntN(2) * 4)}
		r := routeRec{priority: a.priority, tos: a.tos, hop: uint32(rng.IntN(5))}
		m := model[k]
		want, wantHad := m[a]
		if rng.IntN(2) == 0 {
			old, had := tab.put(k, r)
			if had != wantHad || had && old.hop != want {
				t.Fatalf("step %d: put %+v on %v replaced %+v %v, want hop %d %v", step, r, k.prefix(), old, had, want, wantHad)
			}
			if m == nil {
				m = map[alt]uint32{}
				model[k] = m
			}
			m[a] = r.hop
		} else {
			old, had := tab.drop(k, r)
			if had != wantHad || had && old.hop != want {
				t.Fatalf("step %d: drop %+v on %v took %+v %v, want hop %d %v", step, r, k.prefix(), old, had, want, wantHad)
			}
			delete(m, a)
			if len(m) == 0 {
				delete(model, k)
			}
		}
		if tab.prefixes() != len(model) {
			t.Fatalf("step %d: %d prefixes, want %d", step, tab.prefixes(), len(model))
		}
		for _, k := range keys {
			m := model[k]
			if n := len(tab.list(k, nil)); n != len(m) {
				t.Fatalf("step %d: %v: %d routes, want %d", step, k.prefix(), n, len(m))
			}
			b, ok := tab.best(k)
			if ok != (len(m) > 0) {
				t.Fatalf("step %d: %v: best %v, want routes %v", step, k.prefix(), ok, m)
			}
			for a, hop := range m {
				if r, ok := tab.get(k, routeRec{priority: a.priority, tos: a.tos}); !ok || r.hop != hop {
					t.Fatalf("step %d: %v %+v: %+v %v, want hop %d", step, k.prefix(), a, r, ok, hop)
				}
				if a.priority < b.priority || a.priority == b.priority && a.tos < b.tos {
					t.Fatalf("step %d: %v: best %+v, but %+v is better", step, k.prefix(), b, a)
				}
			}
		}
		n := 0
		for k, r := range tab.bests() {
			if b, _ := tab.best(k); r != b {
				t.Fatalf("step %d: bests: %v %+v, want %+v", step, k.prefix(), r, b)
			}
			n++
		}
		if n != len(model) {
			t.Fatalf("step %d: bests gave %d prefixes, want %d", step, n, len(model))
		}
		n = 0
		for k, r := range tab.all() {
			if hop, ok := model[k][alt{r.priority, r.tos}]; !ok || hop != r.hop {
				t.Fatalf("step %d: all: %v %+v, not in %v", step, k.prefix(), r, model[k])
			}
			n++
		}
		total := 0
		for _, m := range model {
			total += len(m)
		}
		if n != total {
			t.Fatalf("step %d: all gave %d routes, want %d", step, n, total)
		}
	}
}

// TestHopTable: a next hop keeps its index while routes go through it,
// and a freed index is reused, for another next hop.
func TestHopTable(t *testing.T) {
	tab := newHopTable()
	a := nextHop{gw: netip.MustParseAddr("10.0.0.1"), ifindex: 3}
	b := nextHop{gw: netip.MustParseAddr("fe80::1"), ifindex: 3}
	ia, ia2, ib := tab.hold(a), tab.hold(a), tab.hold(b)
	if ia != ia2 || ia == ib || tab.hop(ia) != a || tab.hop(ib) != b {
		t.Fatalf("indexes %d %d %d: hops %+v %+v", ia, ia2, ib, tab.hop(ia), tab.hop(ib))
	}
	tab.release(ia)
	if tab.hop(ia) != a {
		t.Fatalf("a freed with a route still through it")
	}
	tab.release(ia)
	c := viaPaths(7)
	if ic := tab.hold(c); ic != ia || tab.hop(ic) != c || len(tab.hops) != 2 {
		t.Fatalf("c took index %d (a's was %d) of %d", ic, ia, len(tab.hops))
	}
	if ia3 := tab.hold(a); ia3 == ia || ia3 == ib {
		t.Fatalf("a again took a used index %d", ia3)
	}
	tab.release(ib)
	if _, ok := tab.ids[b]; ok || len(tab.ids) != 2 {
		t.Fatalf("ids %v after b's last route went", tab.ids)
	}
}

// TestWatcherRoutesHeap: the Watcher's copy of a main table of 100,000
// IPv4 routes through one gateway takes at most 64 bytes a route (35 as
// measured; a map of netip.Prefix to a slice of routes took 132, and 182
// at 1M).
func TestWatcherRoutesHeap(t *testing.T) {
	w, _ := memWatcher(t)
	fullTable(t, w, 100_000)
	w.publish()
	n := w.routes.prefixes()
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	w.routes, w.hops = routeTable{}, hopTable{}
	after := heap()
	per := float64(before-after) / float64(n)
	if per > 64 {
		t.Errorf("%.1f bytes a route", per)
	}
	runtime.KeepAlive(w)
}

// TestHopTableView: a view shares the last one's chunks where no index
// took another next hop, copies the others, and an older view keeps what
// its indexes stood for.
func TestHopTableView(t *testing.T) {
	tab := newHopTable()
	gw := func(i int) nextHop {
		return nextHop{gw: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), ifindex: 3}
	}
	for i := range 3 * hopChunk {
		tab.hold(gw(i))
	}
	v1 := tab.view()
	if len(v1) != 3 || v1.hop(hopChunk+5) != gw(hopChunk+5) {
		t.Fatalf("first view: %d chunks, index %d is %+v", len(v1), hopChunk+5, v1.hop(hopChunk+5))
	}
	tab.release(hopChunk + 5)
	if v := tab.view(); &v[0] != &v1[0] {
		t.Fatal("a freed index alone made another view")
	}
	if id := tab.hold(gw(9999)); id != hopChunk+5 {
		t.Fatalf("new next hop at %d, want the freed %d", id, hopChunk+5)
	}
	tab.hold(gw(3 * hopChunk)) // a fourth chunk
	v2 := tab.view()
	if len(v2) != 4 || v2[0] != v1[0] || v2[2] != v1[2] || v2[1] == v1[1] {
		t.Fatalf("second view: %d chunks, shared 0 %v 1 %v 2 %v; want 4, chunk 1 alone copied",
			len(v2), v2[0] == v1[0], v2[1] == v1[1], v2[2] == v1[2])
	}
	if v2.hop(hopChunk+5) != gw(9999) || v1.hop(hopChunk+5) != gw(hopChunk+5) || v2.hop(3*hopChunk) != gw(3*hopChunk) {
		t.Fatalf("index %d: %+v now, %+v in the first view", hopChunk+5, v2.hop(hopChunk+5), v1.hop(hopChunk+5))
	}
}

// TestWatcherHopIndexReuse: a next hop's index that a burst frees and
// gives to another next hop moves the routes through it in the next
// snapshot and not in those before, also when the trie keeps the index
// (a route deleted and put back through another next hop in one burst).
func TestWatcherHopIndexReuse(t *testing.T) {
	w, tab := memWatcher(t)
	fullTable(t, w, 0) // link 3, neighbours 10.0.0.1 and .2, 10.0.0.0/24 connected
	p, q := netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24")
	w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(p, "10.0.0.1"))
	w.publish()
	s1 := tab.Load()
	resolves := func(s *Snapshot, dst, gw string) bool {
		adj, st := s.Resolve(netip.MustParseAddr(dst))
		if gw == "" {
			return st == AdjNoRoute
		}
		return st == AdjResolved && adj.NextHop == netip.MustParseAddr(gw)
	}
	w.applyRoute(unix.RTM_DELROUTE, gatewayRoute(p, ""))
	w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(q, "10.0.0.2"))
	w.publish()
	s2 := tab.Load()
	if !resolves(s1, "192.0.2.1", "10.0.0.1") || !resolves(s1, "198.51.100.1", "") ||
		!resolves(s2, "192.0.2.1", "") || !resolves(s2, "198.51.100.1", "10.0.0.2") {
		t.Fatal("a route moved to another prefix through a freed index")
	}
	w.applyRoute(unix.RTM_DELROUTE, gatewayRoute(q, ""))
	w.applyRoute(unix.RTM_NEWROUTE, gatewayRoute(q, "10.0.0.1"))
	w.publish()
	s3 := tab.Load()
	if !resolves(s2, "198.51.100.1", "10.0.0.2") || !resolves(s3, "198.51.100.1", "10.0.0.1") {
		t.Fatal("a route put back through another next hop at its freed index")
	}
}
