package fastpath

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/wire"
)

// outerDst sends one frame to dst from the site and returns the outer
// destination of what the core receives (invalid when nothing left).
func outerDst(t *testing.T, r *rig, src, dst netip.Addr) netip.Addr {
	t.Helper()
	r.fromSite(siteFrame(t, innerSpec{src: src, dst: dst, ttl: 9, payload: 20, sport: 7}))
	out := drain(r.core)
	if len(out) == 0 {
		return netip.Addr{}
	}
	if len(out) != 1 {
		t.Fatalf("%d frames out for one in", len(out))
	}
	d := decodeLISP(t, out[0])
	if d.ip4 != nil {
		return netip.AddrFrom4([4]byte(d.ip4.DstIP))
	}
	return netip.AddrFrom16([16]byte(d.ip6.DstIP))
}

// TestMemoSeesMappingChange: destinations answered from the worker's lookup
// memo (IPv4: its flow memo) follow a mapping change in the very next batch:
// a more-specific prefix inserted, turned negative, and deleted again.
func TestMemoSeesMappingChange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		more     netip.Prefix
	}{
		{"IPv4", hostA, remote4, netip.MustParsePrefix("10.2.0.0/24")},
		{"IPv6", hostA6, remote6, netip.MustParsePrefix("2001:db8:2::/64")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocRemote4 {
				t.Fatalf("first packet to %v", got)
			}
			// The same flow again: sent through the flow memo.
			hitX := ExtraFlowHit
			hits := r.w.Extra(hitX)
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocRemote4 {
				t.Fatalf("second packet to %v", got)
			}
			if r.w.Extra(hitX) != hits+1 {
				t.Fatalf("second lookup of %v was not a %v (%d -> %d)", tc.dst, hitX, hits, r.w.Extra(hitX))
			}
			r.install([]StaticMapping{{IID: iidSite, Prefix: tc.more, RLOCs: []StaticRLOC{{Addr: rlocOther4, Weight: 1}}}})
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocOther4 {
				t.Fatalf("after inserting %v: packet to %v, want %v", tc.more, got, rlocOther4)
			}
			hits = r.w.Extra(hitX)
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocOther4 {
				t.Fatalf("memo hit after the change: packet to %v, want %v", got, rlocOther4)
			}
			if r.w.Extra(hitX) != hits+1 {
				t.Fatalf("packet after the change was not a %v", hitX)
			}
			r.install([]StaticMapping{{IID: iidSite, Prefix: tc.more, Action: wire.ActionDrop}})
			before := r.counters()
			if got := outerDst(t, r, tc.src, tc.dst); got.IsValid() {
				t.Fatalf("negative drop entry: packet still sent to %v", got)
			}
			expectDrop(t, before, r.counters(), DropNegative)
			res := r.c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, tc.more), Delete: true}})
			if res.Deleted != 1 {
				t.Fatalf("delete: %+v", res)
			}
			if got := outerDst(t, r, tc.src, tc.dst); got != rlocRemote4 {
				t.Fatalf("after deleting %v: packet to %v, want %v", tc.more, got, rlocRemote4)
			}
		})
	}
}

// TestMemoMarksActive: a memo hit (here a flow memo hit: the same flow
// again) marks the entry active in the current activity tick, as a cache
// lookup does.
func TestMemoMarksActive(t *testing.T) {
	start := time.Unix(3_000_000, 0)
	now := start
	c := cache.New(cache.Config{BuildTemplate: defaultOuter().BuildTemplate, Now: func() time.Time { return now }})
	r := newRig(t, func(cfg *Config) { cfg.Cache = c })
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 {
		t.Fatalf("packet to %v", got)
	}
	e, ok := c.Get(cache.IPKey(iidSite, netip.MustParsePrefix("10.2.0.0/16")))
	if !ok {
		t.Fatal("entry missing")
	}
	now = start.Add(time.Hour)
	c.Tick(now)
	hits := r.w.Extra(ExtraFlowHit)
	if got := outerDst(t, r, hostA, remote4); got != rlocRemote4 {
		t.Fatalf("packet to %v", got)
	}
	if r.w.Extra(ExtraFlowHit) != hits+1 {
		t.Fatal("second packet was not a flow memo hit")
	}
	if lu := c.LastUsed(e); lu.Before(now.Add(-time.Second)) {
		t.Fatalf("memo hit left the entry last used at %v, want the tick of %v", lu, now)
	}
}

// TestMemoMatchesCache: with a tiny memo (collisions in every set), random
// lookups interleaved with random inserts and deletes of nested prefixes
// return exactly what cache.Lookup returns, IPv4 and IPv6, two instance-IDs.
func TestMemoMatchesCache(t *testing.T) {
	c := cache.New(cache.Config{})
	rng := rand.New(rand.NewPCG(7, 8))
	r4 := []cache.RLOC{{Addr: rlocRemote4, Reachable: true}}
	var keys []cache.Key
	randPrefix := func() (uint32, netip.Prefix) {
		iid := uint32(1 + rng.IntN(2))
		if rng.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(4))})
			return iid, netip.PrefixFrom(a, []int{8, 16, 24, 30, 32}[rng.IntN(5)]).Masked()
		}
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(4)), 7: byte(rng.IntN(4))})
		return iid, netip.PrefixFrom(a, []int{32, 48, 64, 120, 128}[rng.IntN(5)]).Masked()
	}
	randDst := func() (uint32, netip.Addr) {
		iid := uint32(1 + rng.IntN(2))
		if rng.IntN(2) == 0 {
			return iid, netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(8))})
		}
		return iid, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(8)), 7: byte(rng.IntN(4))})
	}
	for _, size := range []int{2, 4, 64} {
		m := newLookupMemo(c, size)
		for round := 0; round < 300; round++ {
			var ups []cache.Update
			for range rng.IntN(3) {
				iid, p := randPrefix()
				k := cache.IPKey(iid, p)
				if len(keys) > 0 && rng.IntN(3) == 0 {
					i := rng.IntN(len(keys))
					ups = append(ups, cache.Update{Key: keys[i], Delete: true})
					keys = append(keys[:i], keys[i+1:]...)
					continue
				}
				keys = append(keys, k)
				ups = append(ups, cache.Update{Key: k, TTL: 10, RLOCs: r4})
			}
			c.Apply(ups)
			m.sync()
			for range 50 {
				iid, dst := randDst()
				want, wok := c.Lookup(iid, dst)
				got, gok := m.probe(iid, dst)
				if got != want || gok != wok {
					t.Fatalf("size %d round %d: memo lookup [%d]%v = %v %v, cache %v %v", size, round, iid, dst, got, gok, want, wok)
				}
			}
		}
		if m.hits == 0 || m.miss == 0 {
			t.Errorf("size %d: hits %d misses %d: the test did not exercise both", size, m.hits, m.miss)
		}
	}
}

// TestMemoMarksOncePerFold: memo hits in one fold interval of the cache's
// activity marks go to neither the cache nor the entry; after a fold alone
// the memo keeps its slots and the first hit on one marks the entry in the
// new interval; after two folds without a hit, or a mapping change, the
// slot is gone and the cache answers (and marks) again. The entry's last use
// is right in every interval.
func TestMemoMarksOncePerFold(t *testing.T) {
	start := time.Unix(5_000_000, 0)
	now := start
	c := cache.New(cache.Config{Now: func() time.Time { return now }})
	rl := []cache.RLOC{{Addr: rlocRemote4, Reachable: true}}
	for _, p := range []string{"10.2.0.0/16", "2001:db8:2::/48"} {
		if res := c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, netip.MustParsePrefix(p)), TTL: 1 << 20, RLOCs: rl}}); res.Inserted != 1 {
			t.Fatal(res.Err)
		}
	}
	for _, dst := range []netip.Addr{remote4, remote6} {
		t.Run(dst.String(), func(t *testing.T) {
			m := newLookupMemo(c, 0)
			defer m.rd.Close()
			want, _ := c.Lookup(iidSite, dst)
			probe := func(step string, wantHit bool) {
				t.Helper()
				m.sync()
				h, mi := m.hits, m.miss
				e, ok := m.probe(iidSite, dst)
				m.rd.Flush()
				if !ok || e != want {
					t.Fatalf("%s: probe = %p, %v; want %p", step, e, ok, want)
				}
				if hit := m.hits == h+1 && m.miss == mi; hit != wantHit {
					t.Fatalf("%s: memo hit %v, want %v (hits %d->%d, misses %d->%d)", step, hit, wantHit, h, m.hits, mi, m.miss)
				}
			}
			// fold moves the clock on by an hour and makes the writer fold;
			// the worker's next step (sync) sees it.
			fold := func() {
				t.Helper()
				f := c.Folds()
				now = now.Add(time.Hour)
				c.Expire(now)
				if c.Folds() == f {
					t.Fatal("Expire of a later tick did not fold")
				}
				m.sync()
			}
			lastUsed := func(step string) {
				t.Helper()
				if got := c.LastUsed(want); got.Before(now.Add(-time.Second)) {
					t.Fatalf("%s: last used %v, want the tick of %v", step, got, now)
				}
			}
			probe("first", false)
			probe("same interval", true)
			lastUsed("same interval")
			fold()
			probe("after a fold", true)
			lastUsed("after a fold")
			probe("after a fold, again", true)
			fold()
			fold()
			probe("after two folds", false)
			lastUsed("after two folds")
			probe("after two folds, again", true)
			if res := c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, netip.MustParsePrefix("10.9.0.0/16")), TTL: 1 << 20, RLOCs: rl}}); res.Inserted != 1 {
				t.Fatal(res.Err)
			}
			probe("after a change", false)
			probe("after a change, again", true)
			c.Apply([]cache.Update{{Key: cache.IPKey(iidSite, netip.MustParsePrefix("10.9.0.0/16")), Delete: true}})
		})
	}
}

// TestMemoMovesHitToFront: the memo's IPv4 sets keep their destinations
// most recent first, so a full set forgets the least recently used one. In
// a memo of one set (four ways): after A, B, C, D, a hit on A (in the last
// way) moves it to the front, and E then takes the place of B, the least
// recent; A, C, D and E are hits, B a miss. Both ways to a later-way hit
// take the same path (hitLater: probe, and the batch's lookupStage).
// Leaving the move out makes A the one forgotten.
func TestMemoMovesHitToFront(t *testing.T) {
	c := cache.New(cache.Config{})
	if err := InstallStatic(c, []StaticMapping{{IID: 1, Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}}); err != nil {
		t.Fatal(err)
	}
	m := newLookupMemo(c, 4)
	if len(m.v4) != 1 {
		t.Fatalf("%d sets, want 1", len(m.v4))
	}
	a := func(i byte) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, 0, i}) }
	for i := byte(1); i <= 4; i++ { // A..D: misses, D in front
		m.probe(1, a(i))
	}
	hits := m.hits
	if _, ok := m.probe(1, a(1)); !ok || m.hits != hits+1 {
		t.Fatal("A, in the last way, was not a hit")
	}
	if k := m.v4[0][0].key; k != m.key4(1, a(1).As4()) {
		t.Fatalf("front slot %#x after the hit on A, want A's", k)
	}
	m.probe(1, a(5)) // E: a miss, evicts the least recent
	for _, tc := range []struct {
		i   byte
		hit bool
	}{{1, true}, {3, true}, {4, true}, {5, true}, {2, false}} {
		hits, miss := m.hits, m.miss
		m.probe(1, a(tc.i))
		if got := m.hits == hits+1 && m.miss == miss; got != tc.hit {
			t.Fatalf("10.0.0.%d: hit %v, want %v", tc.i, got, tc.hit)
		}
	}
}

// TestMemo6Spread: the default memo's IPv6 table keeps 4096 destinations
// of the layouts a site's hosts or a PITR's destinations take: after one
// round that fills it, a second round misses at most 5 % of them. A
// two-way set serves three destinations in turn with a miss each, so
// this is about how many destinations share a set with two others. With
// the table half its size (8192 sets), the second round missed 15 % of one
// destination in each of 4096 /48s and 25 % of a run of 4096 interface
// IDs, 9 % of random ones.
func TestMemo6Spread(t *testing.T) {
	c := cache.New(cache.Config{})
	if err := InstallStatic(c, []StaticMapping{{IID: 300, Prefix: netip.MustParsePrefix("2001:db8::/32"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}}}); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(7, 8))
	base := netip.MustParseAddr("2001:db8::").As16()
	layouts := []struct {
		name string
		addr func(i int) [16]byte
	}{
		{"one a /48 (BenchmarkWorker)", func(i int) [16]byte {
			a := base
			a[4], a[5], a[15] = byte(0x10+i>>8), byte(i), byte(1+i%254)
			return a
		}},
		{"interface IDs in a row", func(i int) [16]byte {
			a := base
			a[14], a[15] = byte((i+1)>>8), byte(i+1)
			return a
		}},
		{"::1 of /64s in a row", func(i int) [16]byte {
			a := base
			a[6], a[7], a[15] = byte(i>>8), byte(i), 1
			return a
		}},
		{"::1 of /48s in a row", func(i int) [16]byte {
			a := base
			a[4], a[5], a[15] = byte(i>>8), byte(i), 1
			return a
		}},
		{"the same offset into /116s", func(i int) [16]byte {
			a := base
			a[12], a[13], a[14], a[15] = byte(i>>12), byte(i>>4), byte(i<<4), 5
			return a
		}},
		{"EUI-64 hosts in 64 /64s", func(i int) [16]byte {
			a := base
			a[7] = byte(i >> 6)
			a[8], a[9], a[10], a[11], a[12] = 0x02, 0x16, 0x3e, 0xff, 0xfe
			a[13], a[14], a[15] = byte(i*7), byte(i), byte(i*13)
			return a
		}},
		{"random", func(int) [16]byte {
			a := base
			for k := 4; k < 16; k++ {
				a[k] = byte(rnd.Uint32())
			}
			return a
		}},
	}
	for _, l := range layouts {
		m := newLookupMemo(c, 0)
		dsts := make([]netip.Addr, 4096)
		for i := range dsts {
			dsts[i] = netip.AddrFrom16(l.addr(i))
		}
		for round := range 2 {
			miss := m.miss
			for _, d := range dsts {
				if _, ok := m.probe(300, d); !ok {
					t.Fatalf("%s: %v not found", l.name, d)
				}
			}
			if n := m.miss - miss; round == 1 && n > uint64(len(dsts))*5/100 {
				t.Errorf("%s: the second round missed %d of %d", l.name, n, len(dsts))
			} else if round == 1 {
				t.Logf("%s: the second round missed %d of %d", l.name, n, len(dsts))
			}
		}
	}
}

// TestMemoWrapForgets: when the memo's 8-bit generation wraps (after 255
// changes), no slot filled 255 generations before matches again: the
// IPv4 and IPv6 lookup slots and the flow memo's IPv4 and IPv6 slots,
// filled in generation 1, are forgotten when generation 1 comes round.
// The IPv6 tables are cleared only when an IPv6 slot was filled since the
// last wrap (lookupMemo.used6), so each IPv6 table is filled alone once:
// leaving either fill out of used6 makes it fail.
func TestMemoWrapForgets(t *testing.T) {
	c := cache.New(cache.Config{})
	if err := InstallStatic(c, []StaticMapping{
		{IID: 1, Prefix: netip.MustParsePrefix("10.0.0.0/8"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}},
		{IID: 1, Prefix: netip.MustParsePrefix("2001:db8::/32"), RLOCs: []StaticRLOC{{Addr: rlocRemote4}}},
	}); err != nil {
		t.Fatal(err)
	}
	d4, d6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::9")
	for _, flow6 := range []bool{false, true} {
		m := newLookupMemo(c, 64)
		pk4 := pktInfo{v4: true, iid: 1, dst: d4, hash: 77}
		pk6 := pktInfo{iid: 1, dst: d6, hash: 77}
		found := func(d netip.Addr) bool {
			miss := m.miss
			if _, ok := m.probe(1, d); !ok {
				t.Fatalf("%v not found", d)
			}
			return m.miss == miss
		}
		hits := func() (n int) {
			if found(d4) {
				n++
			}
			m.flowKey4(&pk4, d4.As4())
			if x := &m.flowAt(pk4.fset)[0]; x.key == pk4.mkey && x.bkt == cache.SelectBucket(pk4.hash) || flowLater(m.flowAt(pk4.fset), pk4.mkey, pk4.hash) != nil {
				n++
			}
			key6(m, &pk6)
			if flow6 && m.flow6Hit(&pk6) != nil || !flow6 && found(d6) {
				n++
			}
			return n
		}
		// Fill: an IPv4 lookup and flow, and one IPv6 table.
		found(d4)
		m.flowKey4(&pk4, d4.As4())
		fillFlow(m.flowAt(pk4.fset), pk4.mkey, pk4.hash, 3, 4)
		if key6(m, &pk6); flow6 {
			m.fillFlow6(&pk6, 3, 4)
		} else {
			found(d6)
		}
		if n := hits(); n != 3 {
			t.Fatalf("flow6 %v: %d of 3 hits right after the fill", flow6, n)
		}
		for range 255 { // a change of the cache each: the generation moves on, and wraps at the last
			m.cgen--
			m.sync()
		}
		if m.gen != 1 {
			t.Fatalf("generation %d after 255 changes, want 1 (wrapped)", m.gen)
		}
		if n := hits(); n != 0 {
			t.Fatalf("flow6 %v: %d slots of 255 generations ago still match", flow6, n)
		}
	}
}

// key6 keys pk's IPv6 flow in m as stageProbe6 does from a frame, from
// pk.dst: the reference the tests compare stageProbe6 with.
func key6(m *lookupMemo, pk *pktInfo) {
	a := pk.dst.As16()
	pk.mkey, pk.mlo = binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	pk.fset6 = m.flowSet6(pk.iid, pk.mkey, pk.mlo, pk.hash)
}

// TestFlow6Buddy: three IPv6 flows whose flow memo set is the same all
// stay in the memo (the set's two ways and its buddy's), so that serving
// them in turn finds each every time, with the next-hop entry it was
// filled with; a fourth flow in that set pushes the least recent out.
// Without the buddy, a two-way set served three flows in turn with a
// miss each.
func TestFlow6Buddy(t *testing.T) {
	m := newLookupMemo(cache.New(cache.Config{}), 0)
	rnd := rand.New(rand.NewPCG(17, 18))
	const iid = 300
	bySet := map[flowRef][]pktInfo{}
	var flows []pktInfo
	flow := func() pktInfo {
		pk := pktInfo{iid: iid, mkey: 0x20010db8<<32 | rnd.Uint64()>>32, mlo: rnd.Uint64(), hash: rnd.Uint32()}
		pk.fset6 = m.flowSet6(iid, pk.mkey, pk.mlo, pk.hash)
		bySet[pk.fset6] = append(bySet[pk.fset6], pk)
		return pk
	}
	for len(flows) < 4 {
		if pk := flow(); len(bySet[pk.fset6]) == 4 {
			flows = bySet[pk.fset6]
		}
	}
	// Two flows of the buddy set, in their own set: a flow filled into an
	// empty set pushes nothing into the buddy.
	buddy := flowRef((int(flows[0].fset6)-1)^1) + 1
	for len(bySet[buddy]) < 2 {
		flow()
	}
	others := bySet[buddy][:2]
	for i := range others {
		m.fillFlow6(&others[i], uint16(200+i), 1)
	}
	for i := range 3 {
		m.fillFlow6(&flows[i], uint16(100+i), uint32(7+i))
		if i > 0 {
			continue
		}
		for i := range others {
			if x := m.flow6Hit(&others[i]); x == nil || x.hop != uint16(200+i) {
				t.Fatalf("a flow of the buddy set: slot %+v, want hop %d", x, 200+i)
			}
		}
	}
	for round := range 5 {
		for i := range 3 {
			x := m.flow6Hit(&flows[i])
			if x == nil || x.hop != uint16(100+i) || x.ser != uint32(7+i) {
				t.Fatalf("round %d, flow %d of 3 in set %d: slot %+v, want hop %d", round, i, flows[i].fset6, x, 100+i)
			}
		}
	}
	m.fillFlow6(&flows[3], 103, 10) // flows[0] is the least recent
	for i, want := range []bool{false, true, true, true} {
		if got := m.flow6Hit(&flows[i]) != nil; got != want {
			t.Fatalf("after a fourth flow, flow %d found %v, want %v", i, got, want)
		}
	}
	// A memo of one IPv6 set is its own buddy: its IPv4 set stays as it was.
	m = newLookupMemo(cache.New(cache.Config{}), 4)
	fillFlow(&m.flows[0], m.key4(iid, [4]byte{10, 0, 0, 1}), 5, 1, 1)
	v4 := m.flows[0]
	for i := range flows {
		pk := flows[i]
		pk.fset6 = m.flowSet6(iid, pk.mkey, pk.mlo, pk.hash)
		m.fillFlow6(&pk, uint16(i), 1)
		if m.flows[0] != v4 {
			t.Fatalf("flow %d into the one IPv6 set changed the IPv4 set: %+v, was %+v", i, m.flows[0], v4)
		}
		if m.flow6Hit(&pk) == nil {
			t.Fatalf("flow %d not found in the one IPv6 set", i)
		}
	}
}
