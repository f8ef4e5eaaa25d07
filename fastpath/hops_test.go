package fastpath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"unsafe"

	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// TestRLOCHopFollowsNextHopTable checks that the worker's memo of RLOC next
// hops (hopMemo) follows every snapshot the next-hop table publishes: a new
// neighbour MAC is written from the next packet on, an invalidated
// neighbour sends the packet to the kernel instead of the stale MAC, a lost
// route drops it, a smaller link MTU applies, and the first state comes
// back with its snapshot. Both outer families.
func TestRLOCHopFollowsNextHopTable(t *testing.T) {
	macNew := [6]byte{0x02, 0, 0, 0, 0, 0x77}
	macCore2 := [6]byte{0x02, 0, 0, 0, 0, 0x22}
	for _, tc := range []struct {
		name      string
		src, dst  netip.Addr
		rloc      netip.Addr
		rlocRoute netip.Prefix
	}{
		{"IPv4-outer", hostA, remote4, rlocRemote4, netip.MustParsePrefix("192.0.2.0/24")},
		{"IPv6-outer", hostA6, remote6v6, rlocRemote6, netip.MustParsePrefix("2001:db8:ff::/48")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var toKernel int
			r := newRig(t, func(c *Config) {
				c.ToKernel = func([]byte) bool { toKernel++; return true }
			})
			// snap builds the core side: the RLOC's connected route on a
			// link of MAC linkMAC and MTU mtu, its neighbour entry with MAC
			// nb (valid or not); noRoute leaves the route out.
			snap := func(linkMAC, nb [6]byte, valid bool, mtu uint32, noRoute bool) *nexthop.Snapshot {
				links := []nexthop.Link{
					{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true},
					{Index: 20, MAC: linkMAC, MTU: mtu, Port: 2, Up: true},
				}
				var routes []nexthop.Route
				if !noRoute {
					routes = append(routes, nexthop.Route{Prefix: tc.rlocRoute, IfIndex: 20})
				}
				return nexthop.NewSnapshot(links, routes,
					[]nexthop.Neighbour{{Addr: tc.rloc, IfIndex: 20, MAC: nb, Valid: valid}})
			}
			send := func() (sent [][]byte, c Counters) {
				t.Helper()
				before := r.counters()
				r.fromSite(siteFrame(t, innerSpec{src: tc.src, dst: tc.dst, df: true, payload: 200}))
				return drain(r.core), r.countersSince(before)
			}
			wantMACs := func(step string, dst, src [6]byte) {
				t.Helper()
				out, c := send()
				if len(out) != 1 || c.Get(CounterEncap) != 1 {
					t.Fatalf("%s: %d frames, %d encapsulated, want 1", step, len(out), c.Get(CounterEncap))
				}
				if [6]byte(out[0][0:6]) != dst || [6]byte(out[0][6:12]) != src {
					t.Errorf("%s: Ethernet %x -> %x, want %x -> %x", step, out[0][6:12], out[0][0:6], src, dst)
				}
				d := decodeLISP(t, out[0])
				var got netip.Addr
				if d.ip4 != nil {
					got = netip.AddrFrom4([4]byte(d.ip4.DstIP))
				} else if d.ip6 != nil {
					got = netip.AddrFrom16([16]byte(d.ip6.DstIP))
				}
				if got != tc.rloc {
					t.Errorf("%s: outer destination %v, want %v", step, got, tc.rloc)
				}
			}

			wantMACs("first", macUnderGW, macCore)
			hits := r.w.Extra(ExtraFlowHit)
			wantMACs("memo hit", macUnderGW, macCore)
			if tc.dst.Is4() && r.w.Extra(ExtraFlowHit) != hits+1 { // IPv4 EIDs: through the flow memo
				t.Fatal("second packet was not a flow memo hit")
			}

			r.nh.Store(snap(macCore2, macNew, true, 1500, false))
			wantMACs("new neighbour MAC and link MAC", macNew, macCore2)

			r.nh.Store(snap(macCore2, macNew, false, 1500, false))
			if out, c := send(); len(out) != 0 || toKernel != 1 || c.Get(CounterToKernel) != 1 {
				t.Errorf("neighbour invalid: %d frames on the core link (a stale MAC), to-kernel %d/%d, want 0, 1",
					len(out), toKernel, c.Get(CounterToKernel))
			}

			r.nh.Store(snap(macCore2, macNew, true, 1500, true))
			if out, c := send(); len(out) != 0 || c.Dropped(DropNoRoute) != 1 {
				t.Errorf("route gone: %d frames, %d no-route drops, want 0, 1", len(out), c.Dropped(DropNoRoute))
			}

			r.nh.Store(snap(macCore2, macNew, true, 200, false))
			if out, c := send(); len(out) != 0 || c.Dropped(DropMTUExceeded) != 1 {
				t.Errorf("link MTU 200: %d frames, %d MTU drops, want 0, 1", len(out), c.Dropped(DropMTUExceeded))
			}

			r.nh.Store(testNextHops())
			wantMACs("first snapshot again", macUnderGW, macCore)
		})
	}
}

// TestDeliveryHopFollowsNextHopTable is TestRLOCHopFollowsNextHopTable for
// the ETR side: the next hop of an inner destination on the site (hopMemo
// without a template) follows every snapshot.
func TestDeliveryHopFollowsNextHopTable(t *testing.T) {
	macNew := [6]byte{0x02, 0, 0, 0, 0, 0x78}
	macSite2 := [6]byte{0x02, 0, 0, 0, 0, 0x12}
	var toKernel int
	r := newRig(t, func(c *Config) {
		c.ToKernel = func([]byte) bool { toKernel++; return true }
	})
	snap := func(linkMAC, nb [6]byte, valid, noRoute bool) *nexthop.Snapshot {
		links := []nexthop.Link{
			{Index: 10, MAC: linkMAC, MTU: 1500, Port: 1, Up: true},
			{Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true},
		}
		var routes []nexthop.Route
		if !noRoute {
			routes = append(routes, nexthop.Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), IfIndex: 10})
		}
		return nexthop.NewSnapshot(links, routes, []nexthop.Neighbour{{Addr: hostA, IfIndex: 10, MAC: nb, Valid: valid}})
	}
	send := func() (sent [][]byte, c Counters) {
		t.Helper()
		before := r.counters()
		in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 20})
		r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in}))
		return drain(r.site), r.countersSince(before)
	}
	wantMACs := func(step string, dst, src [6]byte) {
		t.Helper()
		out, c := send()
		if len(out) != 1 || c.Get(CounterDecap) != 1 {
			t.Fatalf("%s: %d frames, %d decapsulated, want 1", step, len(out), c.Get(CounterDecap))
		}
		if [6]byte(out[0][0:6]) != dst || [6]byte(out[0][6:12]) != src || out[0][12] != 0x08 || out[0][13] != 0 {
			t.Errorf("%s: Ethernet %x -> %x type %x, want %x -> %x type 0800", step, out[0][6:12], out[0][0:6], out[0][12:14], src, dst)
		}
	}
	wantMACs("first", macHostA, macSite)
	wantMACs("memo hit", macHostA, macSite)
	r.nh.Store(snap(macSite2, macNew, true, false))
	wantMACs("new neighbour MAC and link MAC", macNew, macSite2)
	r.nh.Store(snap(macSite2, macNew, false, false))
	if out, c := send(); len(out) != 0 || toKernel != 1 || c.Get(CounterToKernel) != 1 {
		t.Errorf("neighbour invalid: %d frames on the site link (a stale MAC), to-kernel %d/%d, want 0, 1",
			len(out), toKernel, c.Get(CounterToKernel))
	}
	r.nh.Store(snap(macSite2, macNew, true, true))
	if out, c := send(); len(out) != 0 || c.Dropped(DropNoRoute) != 1 {
		t.Errorf("route gone: %d frames, %d no-route drops, want 0, 1", len(out), c.Dropped(DropNoRoute))
	}
	r.nh.Store(testNextHops())
	wantMACs("first snapshot again", macHostA, macSite)
}

// countersSince returns what the worker counted since before.
func (r *rig) countersSince(before Counters) Counters {
	c := r.counters()
	for i := range c.v {
		c.v[i] -= before.v[i]
	}
	return c
}

// TestEncapFastRefusalLeavesFrame: when encapFast has already moved the
// front of a frame (it does so before the TTL checks) and then refuses the
// packet (TTL expired: inner TTL 1 from a site, outer TTL 1 below the inner
// one for the RTR), it returns encapNo with the frame exactly as it was
// (start, length, bytes), for the general path that drops it; a packet it
// takes gets the 50-byte front and TTL 1. The same for IPv6 EIDs (hop
// limit): encapFast takes them too. Moving the front back wrong, or not
// at all, makes it fail, and so does leaving IPv6 packets to the general
// path.
func TestEncapFastRefusalLeavesFrame(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RTR = true })
	r.install([]StaticMapping{
		{IID: 300, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
		{IID: 300, Prefix: netip.MustParsePrefix("2001:db8:2::/48"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
	})
	pool := r.w.ports[0].p.Pool()
	r.w.snap = r.nh.Load()
	for _, tc := range []struct {
		name  string
		frame []byte
		core  bool
		take  bool
	}{
		{"site-ttl1", siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 1, payload: 40}), false, false},
		{"site-ttl2", siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 2, payload: 40}), false, true},
		{"rtr-outer-ttl1", lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, ttl: 1,
			inner: innerPacket(t, innerSpec{src: hostA, dst: remote4, ttl: 64, payload: 40})}), true, false},
		{"rtr-outer-ttl2", lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, ttl: 2,
			inner: innerPacket(t, innerSpec{src: hostA, dst: remote4, ttl: 64, payload: 40})}), true, true},
		{"site6-hl1", siteFrame(t, innerSpec{src: hostA6, dst: remote6, ttl: 1, payload: 40}), false, false},
		{"site6-hl2", siteFrame(t, innerSpec{src: hostA6, dst: remote6, ttl: 2, payload: 40}), false, true},
		{"rtr6-outer-ttl1", lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, ttl: 1,
			inner: innerPacket(t, innerSpec{src: hostA6, dst: remote6, ttl: 64, payload: 40})}), true, false},
		{"rtr6-outer-ttl2", lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, ttl: 2,
			inner: innerPacket(t, innerSpec{src: hostA6, dst: remote6, ttl: 64, payload: 40})}), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := pool.Get()
			if !ok || !f.SetLen(len(tc.frame)) {
				t.Fatal("no frame")
			}
			defer ring.Release([]ring.Frame{f})
			copy(f.Bytes(), tc.frame)
			var pk pktInfo
			if tc.core {
				r.w.parseCore(&pk, 1, &f)
				if pk.act != actForward {
					t.Fatalf("parsed as %d, want actForward", pk.act)
				}
				lazyAddrs(&pk, &f)
			} else if !r.w.parseSite(&pk, 0, &f) {
				t.Fatal("site frame dropped")
			}
			r.w.lookup(&pk)
			if pk.r == nil {
				t.Fatal("no RLOC selected")
			}
			off, n := f.Offset(), f.Len()
			out := r.w.encapFast(&pk, &f)
			if !tc.take {
				if out != encapNo {
					t.Fatalf("encapFast = %d, want encapNo", out)
				}
				if f.Offset() != off || f.Len() != n || !bytes.Equal(f.Bytes(), tc.frame) {
					t.Fatalf("refused frame changed: offset %d→%d, length %d→%d", off, f.Offset(), n, f.Len())
				}
				return
			}
			if out != 1 {
				t.Fatalf("encapFast = %d, want the core port (1)", out)
			}
			if f.Offset() != off+pk.innerOff-frontV4 || f.Len() != frontV4+pk.innerLen {
				t.Fatalf("taken frame: offset %d length %d, want %d and %d", f.Offset(), f.Len(), off+pk.innerOff-frontV4, frontV4+pk.innerLen)
			}
			ttlAt := frontV4 + 8
			if !pk.v4 {
				ttlAt = frontV4 + 7 // the hop limit
			}
			if got := f.Bytes()[ttlAt]; got != 1 {
				t.Fatalf("taken frame: inner TTL %d, want 1", got)
			}
		})
	}
}

// TestEncapFastFillsHop: encapFast takes a packet whose RLOC's next-hop
// memo entry is empty (it fills the entry first) and, after the next-hop
// table publishes a new snapshot, one whose entry is stale; it does not
// leave either to the general path. Returning encapNo after filling makes
// it fail.
func TestEncapFastFillsHop(t *testing.T) {
	r := newRig(t, nil)
	r.install([]StaticMapping{{IID: iidSite, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}}})
	pool := r.w.ports[0].p.Pool()
	frame := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 40})
	for i, snap := range []*nexthop.Snapshot{r.nh.Load(), testNextHops()} {
		r.nh.Store(snap)
		r.w.snap = r.nh.Load()
		f, ok := pool.Get()
		if !ok || !f.SetLen(len(frame)) {
			t.Fatal("no frame")
		}
		copy(f.Bytes(), frame)
		var pk pktInfo
		if !r.w.parseSite(&pk, 0, &f) {
			t.Fatal("site frame dropped")
		}
		r.w.lookup(&pk)
		if pk.r == nil {
			t.Fatal("no RLOC selected")
		}
		if i == 0 {
			clear(r.w.hops[:])
		}
		out := r.w.encapFast(&pk, &f)
		ring.Release([]ring.Frame{f})
		if out != 1 {
			t.Fatalf("packet %d: encapFast = %d, want the core port (1)", i, out)
		}
	}
}

// TestWorkerUsedNextHops: a worker notes the link-layer destinations of
// the next hops it resolved and sent through in the current snapshot, each
// once, and UsedNextHops reports them once; after a new snapshot only those
// it sent through again; while the slow path holds the record, the worker
// notes at its next step instead.
func TestWorkerUsedNextHops(t *testing.T) {
	r := newRig(t, nil)
	used := func() []nexthop.LinkDest {
		r.w.usedAt = 0 // due now
		r.w.Step()
		ds := r.w.UsedNextHops(nil)
		slices.SortFunc(ds, func(a, b nexthop.LinkDest) int { return int(a.IfIndex - b.IfIndex) })
		return ds
	}
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9}))
	one(t, r.core)
	r.fromCore(decapFrame(t, 64, 9, 0))
	one(t, r.site)
	want := []nexthop.LinkDest{{IfIndex: 10, MAC: macHostA}, {IfIndex: 20, MAC: macUnderGW}}
	if got := used(); !slices.Equal(got, want) {
		t.Fatalf("used %v, want %v", got, want)
	}
	if again := r.w.UsedNextHops(nil); len(again) != 0 {
		t.Fatalf("reported again without a step: %v", again)
	}
	r.nh.Store(testNextHops())
	if got := used(); len(got) != 0 {
		t.Fatalf("after a new snapshot, before any packet: used %v, want none", got)
	}
	r.fromCore(decapFrame(t, 64, 9, 0))
	one(t, r.site)
	r.w.used.mu.Lock()
	r.w.usedAt = 0
	r.w.Step() // the slow path holds the record: nothing noted
	r.w.used.mu.Unlock()
	if r.w.usedAt != 0 {
		t.Fatalf("the worker noted while the record was held (next at %d)", r.w.usedAt)
	}
	if got := used(); !slices.Equal(got, want[:1]) {
		t.Fatalf("after a delivery in the new snapshot: used %v, want %v", got, want[:1])
	}
}

// TestWorkerUsedNextHopsSinceNote: a note names the next hops packets
// went through since the previous one, not every one resolved: a host the
// worker stopped sending to is not named again. A next hop set aside by a
// note is taken up again by its next packet without filling it: on the
// flow memo's path (the packet stays a flow memo hit, the entry keeps its
// serial), on deliver4's (through deliverAt) and on hop's (an IPv6
// delivery). Notes the slow path has not read yet add up.
func TestWorkerUsedNextHopsSinceNote(t *testing.T) {
	r := newRig(t, nil)
	note := func() {
		r.w.usedAt = 0 // due now
		r.w.Step()
	}
	read := func() []nexthop.LinkDest {
		ds := r.w.UsedNextHops(nil)
		slices.SortFunc(ds, func(a, b nexthop.LinkDest) int {
			if a.IfIndex != b.IfIndex {
				return int(a.IfIndex - b.IfIndex)
			}
			return bytes.Compare(a.MAC[:], b.MAC[:])
		})
		return ds
	}
	gw := nexthop.LinkDest{IfIndex: 20, MAC: macUnderGW}
	host4 := nexthop.LinkDest{IfIndex: 10, MAC: macHostA}
	host6 := nexthop.LinkDest{IfIndex: 10, MAC: macHost6}
	enc := func() {
		t.Helper()
		r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: remote4, ttl: 9, payload: 20, sport: 7, dport: 9}))
		one(t, r.core)
	}
	dec4 := func() {
		t.Helper()
		r.fromCore(decapFrame(t, 64, 9, 0))
		one(t, r.site)
	}
	dec6 := func() {
		t.Helper()
		r.fromCore(decapFrameWith(t, false, true, 64, 9, 0))
		one(t, r.site)
	}
	enc()
	enc() // a flow memo hit
	dec4()
	dec4()
	dec6()
	note()
	if got, want := read(), []nexthop.LinkDest{host4, host6, gw}; !slices.Equal(got, want) {
		t.Fatalf("first note: %v, want %v", got, want)
	}
	sers := func() (s [hopSlots + delSlots]uint32) {
		for i := range r.w.hops {
			s[i] = r.w.hops[i].ser
		}
		for i := range r.w.dels {
			s[hopSlots+i] = r.w.dels[i].ser
		}
		return s
	}
	before := sers()

	// The encap flow and the IPv4 host again, the IPv6 host not.
	note() // nothing since: sets aside nothing, names nothing
	if got := read(); len(got) != 0 {
		t.Fatalf("a note with no packet since the last: %v", got)
	}
	hits, miss := r.w.memo.flowHits, r.w.memo.miss
	enc()
	if r.w.memo.flowHits != hits+1 || r.w.memo.miss != miss {
		t.Errorf("the flow's packet after a note: %d flow memo hits, %d misses, want 1 and 0 (taken up without a lookup)",
			r.w.memo.flowHits-hits, r.w.memo.miss-miss)
	}
	dec4()
	if sers() != before {
		t.Error("a next hop was filled again after a note, not taken up")
	}
	note()
	if got, want := read(), []nexthop.LinkDest{host4, gw}; !slices.Equal(got, want) {
		t.Fatalf("after the encap flow and the IPv4 host: %v, want %v (not the IPv6 host, sent nothing)", got, want)
	}

	// Two notes before the slow path reads: both count.
	before = sers()
	enc()
	note()
	dec6()
	if sers() != before {
		t.Error("a next hop was filled again after a note, not taken up (the IPv6 delivery)")
	}
	note()
	if got, want := read(), []nexthop.LinkDest{host6, gw}; !slices.Equal(got, want) {
		t.Fatalf("two notes read at once: %v, want %v", got, want)
	}
	if got := read(); len(got) != 0 {
		t.Fatalf("read again: %v", got)
	}

	// A record the slow path left full: the next hops that found no room
	// stay current and are noted once there is room.
	enc()
	r.w.used.ds, r.w.used.n = [usedMax]nexthop.LinkDest{}, usedMax // as if full of other destinations ({0, 0})
	note()
	if got := read(); len(got) != usedMax || slices.Contains(got, gw) {
		t.Fatalf("a full record: %d destinations read (gateway among them: %v), want the %d it held", len(got), slices.Contains(got, gw), usedMax)
	}
	note()
	if got, want := read(), []nexthop.LinkDest{gw}; !slices.Equal(got, want) {
		t.Fatalf("the note after a full record: %v, want %v", got, want)
	}
}

// TestHopCarriedOverSnapshots: a next-hop snapshot that resolves an RLOC
// (or a site host) as the one stored before it did leaves the worker's
// memo entry for it as it was, with the flows through it (carry): the
// next packet is a flow memo hit, with the same frame. A snapshot that
// moves the RLOC's adjacency, one that says it lost the RLOC's link-layer
// destination, and one that comes after a snapshot the worker did not see
// make the entry filled again, and the packets follow the new snapshot.
func TestHopCarriedOverSnapshots(t *testing.T) {
	r := newRig(t, nil)
	macNew := [6]byte{0x02, 0, 0, 0, 0, 0x79}
	unrelated := func(i byte) nexthop.Route {
		return nexthop.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, i, 0}), 24), IfIndex: 20}
	}
	rlocMAC := func(mac [6]byte) func([]nexthop.Neighbour) []nexthop.Neighbour {
		return func(ns []nexthop.Neighbour) []nexthop.Neighbour {
			for i := range ns {
				if ns[i].Addr == rlocRemote4 {
					ns[i].MAC = mac
				}
			}
			return ns
		}
	}
	var first []byte
	send := func(step string, carried bool, dst [6]byte) {
		t.Helper()
		fills, carries := r.w.hopSer, r.w.Extra(ExtraHopCarried)
		for i := range 2 { // the second through the flow memo, whatever the first did
			hits, lookups := r.w.Extra(ExtraFlowHit), r.w.memo.hits+r.w.memo.miss
			r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 100}))
			if i == 0 && carried && r.w.memo.hits+r.w.memo.miss != lookups {
				t.Errorf("%s: the first packet after the snapshot was looked up, not sent through its carried flow memo hit", step)
			}
			out := drain(r.core)
			if len(out) != 1 || [6]byte(out[0][0:6]) != dst {
				t.Fatalf("%s: %d frames, want 1 to %x", step, len(out), dst)
			}
			if first == nil {
				first = out[0]
			} else if !bytes.Equal(out[0][6:14], first[6:14]) || !bytes.Equal(out[0][50:], first[50:]) {
				t.Errorf("%s: frame\n%x\nwant as the first but for the destination MAC, IP ID and nonce\n%x", step, out[0], first)
			}
			if i == 1 && r.w.Extra(ExtraFlowHit) != hits+1 {
				t.Errorf("%s: the second packet was no flow memo hit", step)
			}
		}
		gotCarried := r.w.Extra(ExtraHopCarried) == carries+1
		if filled := r.w.hopSer != fills; gotCarried != carried || filled == carried {
			t.Errorf("%s: carried %v, filled again %v; want carried %v", step, gotCarried, filled, carried)
		}
	}
	send("first", false, macUnderGW)
	r.nh.Store(testNextHops(unrelated(1)))
	send("a route no packet goes by", true, macUnderGW)
	r.nh.Store(testNextHops(unrelated(2)).MarkLost([]nexthop.LinkDest{{IfIndex: 20, MAC: macNew}}))
	send("another destination lost", true, macUnderGW)
	r.nh.Store(testNextHops(unrelated(3)).MarkLost([]nexthop.LinkDest{{IfIndex: 20, MAC: macUnderGW}}))
	send("the RLOC's destination lost (and back)", false, macUnderGW)
	r.nh.Store(testNextHops(unrelated(4)))
	r.nh.Store(testNextHops(unrelated(5)))
	send("a snapshot skipped", false, macUnderGW)
	r.nh.Store(nextHopsWith(rlocMAC(macNew), unrelated(6)))
	send("the RLOC's MAC moved", false, macNew)
	r.nh.Store(nextHopsWith(rlocMAC(macNew), unrelated(7)))
	send("the new MAC kept", true, macNew)

	// A snapshot that says which routes moved (Snapshot.Moved, as the
	// Watcher's for a few routes do) is believed: a destination outside
	// them is carried without a lookup, even by a snapshot that does
	// resolve it otherwise without saying so; one inside them is looked
	// up, and carried when it resolves alike.
	core := netip.MustParsePrefix("192.0.2.0/24") // rlocRemote4's route
	r.nh.Store(nextHopsWith(rlocMAC(macUnderGW), unrelated(9)).MarkMoved([]netip.Prefix{unrelated(9).Prefix}, nil))
	send("routes moved elsewhere (and the RLOC's MAC, unsaid)", true, macNew)
	r.nh.Store(nextHopsWith(rlocMAC(macUnderGW), unrelated(10)).MarkMoved([]netip.Prefix{core}, nil))
	send("the RLOC's route moved", false, macUnderGW)
	r.nh.Store(nextHopsWith(rlocMAC(macUnderGW), unrelated(11)).MarkMoved([]netip.Prefix{unrelated(11).Prefix, core}, nil))
	send("the RLOC's route moved, resolving alike", true, macUnderGW)
	r.nh.Store(nextHopsWith(rlocMAC(macUnderGW), unrelated(12)).MarkMoved(nil, []nexthop.LinkDest{{IfIndex: 20, MAC: macUnderGW}}))
	send("no route moved, the RLOC's destination lost (and back)", false, macUnderGW)

	// A site host's entry (a delivery) is carried alike.
	deliver := func(step string, carried bool) {
		t.Helper()
		carries, fills := r.w.Extra(ExtraHopCarried), r.w.hopSer
		in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 20})
		r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in}))
		if out := drain(r.site); len(out) != 1 || [6]byte(out[0][0:6]) != macHostA {
			t.Fatalf("%s: %d frames, want 1 to %x", step, len(out), macHostA)
		}
		if got := r.w.Extra(ExtraHopCarried) == carries+1; got != carried || (r.w.hopSer != fills) == carried {
			t.Errorf("%s: carried %v, filled again %v; want carried %v", step, got, r.w.hopSer != fills, carried)
		}
	}
	deliver("delivery, first", false)
	r.nh.Store(nextHopsWith(rlocMAC(macNew), unrelated(8)))
	deliver("delivery, a route no packet goes by", true)
}

// TestDeliveryManyHosts: an ETR delivering to 4096 site hosts in a row
// (10.1.8.0 to 10.1.23.255) keeps every one's next hop: a second round of packets to them fills no
// memo entry, each host gets its own MAC, and the worker's note of used
// next hops names every host once. With one 256-entry memo for RLOCs and
// hosts alike, the second round filled every entry again.
func TestDeliveryManyHosts(t *testing.T) {
	const n = 4096 // half of delSlots (TestDelSlotsSpread)
	hosts := make([]netip.Addr, n)
	for i := range hosts {
		hosts[i] = netip.AddrFrom4([4]byte{10, 1, byte(8 + i>>8), byte(i)}) // 10.1.8.0 on
	}
	r, round := deliveryRounds(t, hosts)
	round("first round")
	ser := r.w.hopSer
	round("second round")
	if r.w.hopSer != ser {
		t.Errorf("second round: %d next-hop memo entries filled again, want 0", r.w.hopSer-ser)
	}
	r.w.usedAt = 0 // a note is due
	r.w.Step()
	used := r.w.UsedNextHops(nil)
	seen := make(map[nexthop.LinkDest]bool, len(used))
	for _, d := range used {
		if seen[d] {
			t.Fatalf("note: %v named twice", d)
		}
		seen[d] = true
	}
	for i := range hosts {
		if d := (nexthop.LinkDest{IfIndex: 10, MAC: deliveryMAC(i)}); !seen[d] {
			t.Fatalf("note: host %v (%v) not named among %d", hosts[i], d, len(used))
		}
	}
	if len(used) != n {
		t.Errorf("note: %d destinations, want the %d hosts", len(used), n)
	}
}

// TestDeliveryHostsShareSlots: hosts whose first delivery slots coincide,
// the first 256 addresses of sixteen /20s (delSlot4's weak case), keep
// their next hops through their second slots: a third round of packets to
// them fills at most one entry in eight again. With a slot a destination,
// nine in ten were filled again every round.
func TestDeliveryHostsShareSlots(t *testing.T) {
	var hosts []netip.Addr
	firsts := map[uint32]int{}
	for s := range 16 {
		for h := range 256 {
			a := netip.AddrFrom4([4]byte{10, 1, byte(s << 4), byte(h)})
			hosts = append(hosts, a)
			k := [4]byte(a.AsSlice())
			firsts[delSlot4(binary.BigEndian.Uint32(k[:]))]++
		}
	}
	shared := 0
	for _, c := range firsts {
		if c > 1 {
			shared += c
		}
	}
	if shared < len(hosts)*3/4 {
		t.Fatalf("%d of the %d hosts share a first slot: not the case this test is about", shared, len(hosts))
	}
	r, round := deliveryRounds(t, hosts)
	round("first round")
	round("second round")
	ser := r.w.hopSer
	round("third round")
	got := int(r.w.hopSer - ser)
	t.Logf("third round: %d of %d hosts' next hops filled again", got, len(hosts))
	if got > len(hosts)/8 {
		t.Errorf("third round: %d of %d hosts' next hops filled again, want at most %d", got, len(hosts), len(hosts)/8)
	}
}

// TestDelWay: a destination whose first slot another holds goes to its
// second slot while the first one's destination is in use, and evicts the
// first one's once that had no packet since the last note of used next
// hops, leaving the one in its second slot. Destinations that resolve to no
// neighbour (packets to addresses of the site that no host answers) take
// each other's place before a host's in use. IPv4 (del4) and any address
// (hop) alike.
func TestDelWay(t *testing.T) {
	// x, y, z: one first slot; h and v another, and u a third, v's
	// second. The six take eight slots, none the same.
	type dests struct{ x, y, z, h, u, v netip.Addr }
	find := func(addr func(i uint32) netip.Addr) (d dests) {
		taken := map[uint32]bool{}
		// first: an address whose first slot is a (any with a < 0),
		// whose second slot is another and not taken.
		first := func(a int) netip.Addr {
			for i := uint32(1); i <= 1<<20; i++ { // a slot's address comes within about 8192
				n := addr(i)
				if fa, fb := delIndex(n); fa != fb && !taken[fb] && (a < 0 && !taken[fa] || int(fa) == a) {
					taken[fa], taken[fb] = true, true
					return n
				}
			}
			t.Fatalf("no address of first slot %d among 2^20", a)
			return netip.Addr{}
		}
		slot := func(n netip.Addr) int { a, _ := delIndex(n); return int(a) }
		second := func(n netip.Addr) int { _, b := delIndex(n); return int(b) }
		d.x = first(-1)
		d.y, d.z = first(slot(d.x)), first(slot(d.x))
		d.h = first(-1)
		d.v = first(slot(d.h))
		delete(taken, uint32(second(d.v)))
		d.u = first(second(d.v))
		return d
	}
	v4 := find(func(i uint32) netip.Addr {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 10<<24|i)
		return netip.AddrFrom4(a)
	})
	v6 := find(func(i uint32) netip.Addr {
		a := netip.MustParseAddr("fd00::").As16()
		binary.BigEndian.PutUint32(a[12:], i)
		return netip.AddrFrom16(a)
	})
	// All but u and v resolved on the site port: a note sets aside only
	// such entries.
	var neighs []nexthop.Neighbour
	for _, d := range []dests{v4, v6} {
		for _, a := range []netip.Addr{d.x, d.y, d.z, d.h} {
			neighs = append(neighs, nexthop.Neighbour{Addr: a, IfIndex: 10, MAC: macHostA, Valid: true})
		}
	}
	r := newRig(t, nil)
	r.nh.Store(nexthop.NewSnapshot(
		[]nexthop.Link{{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true}},
		[]nexthop.Route{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), IfIndex: 10}, {Prefix: netip.MustParsePrefix("fd00::/8"), IfIndex: 10}},
		neighs))
	r.w.snap = r.nh.Load()
	for _, tc := range []struct {
		name string
		d    dests
		get  func(netip.Addr) *nextHop
	}{
		{"del4", v4, func(d netip.Addr) *nextHop { k := d.As4(); return r.w.del4(binary.BigEndian.Uint32(k[:])) }},
		{"hop", v6, func(d netip.Addr) *nextHop { return r.w.hop(d, nil) }},
	} {
		x, y, z := tc.d.x, tc.d.y, tc.d.z
		a, _ := delIndex(x)
		_, by := delIndex(y)
		if hx := tc.get(x); hx != &r.w.dels[a] || hx.dst != x {
			t.Fatalf("%s: %v not in its first slot", tc.name, x)
		}
		if hy := tc.get(y); hy != &r.w.dels[by] || hy.dst != y {
			t.Fatalf("%s: %v, whose first slot %v holds, not in its second", tc.name, y, x)
		}
		ser := r.w.hopSer
		if tc.get(x).dst != x || tc.get(y).dst != y || r.w.hopSer != ser {
			t.Fatalf("%s: %v and %v filled again (%d), want both kept", tc.name, x, y, r.w.hopSer-ser)
		}
		r.w.usedAt = 0 // a note: both set aside
		r.w.noteUsed()
		tc.get(y) // y in use again, x not
		if hz := tc.get(z); hz != &r.w.dels[a] || hz.dst != z {
			t.Fatalf("%s: %v took slot %d, want its first, %d, from %v, idle since the note", tc.name, z, slotOf(r.w, hz), a, x)
		}
		if r.w.dels[by].dst != y {
			t.Fatalf("%s: %v lost its second slot", tc.name, y)
		}

		h, u, v := tc.d.h, tc.d.u, tc.d.v
		ha, _ := delIndex(h)
		_, vb := delIndex(v)
		if got := tc.get(h); got != &r.w.dels[ha] || got.out < 0 {
			t.Fatalf("%s: host %v not resolved in its first slot (out %d)", tc.name, h, got.out)
		}
		if got := tc.get(u); got != &r.w.dels[vb] || got.out >= 0 {
			t.Fatalf("%s: %v (no neighbour) took slot %d (out %d), want %d, its first", tc.name, u, slotOf(r.w, got), got.out, vb)
		}
		if got := tc.get(v); got != &r.w.dels[vb] || got.dst != v || r.w.dels[ha].dst != h {
			t.Fatalf("%s: %v (no neighbour) took slot %d, want %d, its second, from %v (no neighbour), not %v's", tc.name, v, slotOf(r.w, got), vb, u, h)
		}
	}
}

// slotOf is the index of h in w's delivery memo.
func slotOf(w *Worker, h *nextHop) int {
	return int((uintptr(unsafe.Pointer(h)) - uintptr(unsafe.Pointer(&w.dels[0]))) / unsafe.Sizeof(*h))
}

// deliveryMAC is the MAC address of host i of deliveryRounds.
func deliveryMAC(i int) [6]byte { return [6]byte{0x02, 0x01, 0, 0, byte(i >> 8), byte(i)} }

// deliveryRounds sets up a rig whose site (10.1.0.0/16, 2001:db8:1::/48) holds hosts, host i
// at deliveryMAC(i), and returns it with round, which sends a LISP packet
// to each host in turn, a batch at a time, and checks each is delivered
// to its host's MAC.
func deliveryRounds(t *testing.T, hosts []netip.Addr) (*rig, func(what string)) {
	t.Helper()
	r := newRig(t, nil)
	neighs := []nexthop.Neighbour{{Addr: rlocRemote4, IfIndex: 20, MAC: macUnderGW, Valid: true}}
	for i, h := range hosts {
		neighs = append(neighs, nexthop.Neighbour{Addr: h, IfIndex: 10, MAC: deliveryMAC(i), Valid: true})
	}
	r.nh.Store(nexthop.NewSnapshot(
		[]nexthop.Link{{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true}, {Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true}},
		[]nexthop.Route{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), IfIndex: 10}, {Prefix: netip.MustParsePrefix("2001:db8:1::/48"), IfIndex: 10},
			{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20}},
		neighs))
	return r, func(what string) {
		t.Helper()
		for i := 0; i < len(hosts); i += ring.IdealBatchSize {
			var fs [][]byte
			for j := i; j < min(i+ring.IdealBatchSize, len(hosts)); j++ {
				src := remote4
				if hosts[j].Is6() {
					src = remote6
				}
				in := innerPacket(t, innerSpec{src: src, dst: hosts[j], payload: 20})
				fs = append(fs, lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in}))
			}
			r.fromCore(fs...)
			out := drain(r.site)
			if len(out) != len(fs) {
				t.Fatalf("%s: %d of %d frames delivered", what, len(out), len(fs))
			}
			for k, b := range out {
				if [6]byte(b[0:6]) != deliveryMAC(i+k) {
					t.Fatalf("%s: host %v got MAC %x, want %x", what, hosts[i+k], b[0:6], deliveryMAC(i+k))
				}
			}
		}
	}
}

// TestUsedHopsAdd: the record of used next hops keeps each destination
// once however many there are, refuses a new one when full, and starts
// empty again once read.
func TestUsedHopsAdd(t *testing.T) {
	u := new(usedHops)
	d := func(i int) nexthop.LinkDest {
		return nexthop.LinkDest{IfIndex: int32(1 + i%3), MAC: [6]byte{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}}
	}
	for i := range usedMax {
		if !u.add(d(i)) || !u.add(d(i/2)) { // d(i/2): one added before (or just now)
			t.Fatalf("add %d: refused below %d", i, usedMax)
		}
	}
	if u.n != usedMax {
		t.Fatalf("%d recorded, want %d", u.n, usedMax)
	}
	if u.add(d(usedMax)) {
		t.Fatal("a full record took another destination")
	}
	if !u.add(d(7)) {
		t.Fatal("a full record refused one it holds")
	}
	w := &Worker{used: u}
	got := w.UsedNextHops(nil)
	if len(got) != usedMax || got[0] != d(0) || got[usedMax-1] != d(usedMax-1) {
		t.Fatalf("read %d, first %v last %v", len(got), got[0], got[len(got)-1])
	}
	if !u.add(d(5)) || u.n != 1 || !u.add(d(5)) || u.n != 1 {
		t.Fatalf("after the read: %d recorded, want 1 (d(5) once)", u.n)
	}
}

// TestRLOCHopsOwnSlots: an ITR sending to as many remote sites as its
// RLOC memo has entries, each behind an RLOC of its own, keeps every
// RLOC's next hop: a second round of packets fills no memo entry and
// takes the flow memo. Keyed by the template's address, as before stop 46,
// more than half of 4096 shared a slot and were filled again on every
// packet (1639 flow memo hits of 4096).
func TestRLOCHopsOwnSlots(t *testing.T) {
	r := newRig(t, nil)
	const n = 16384 // hopSlots: a PITR's share of a large deployment (encap-64B-16krlocs)
	dsts := make([]netip.Addr, n)
	ms := make([]StaticMapping, n)
	for i := range ms {
		dsts[i] = netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		ms[i] = StaticMapping{IID: iidSite, Prefix: netip.PrefixFrom(dsts[i], 32), RLOCs: []StaticRLOC{
			{Addr: netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), Weight: 1}}}
	}
	r.install(ms)
	r.nh.Store(nexthop.NewSnapshot(
		[]nexthop.Link{{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true}, {Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true}},
		[]nexthop.Route{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), IfIndex: 10}, {Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
			{Prefix: netip.MustParsePrefix("100.64.0.0/10"), Gateway: rlocRemote4, IfIndex: 20}},
		[]nexthop.Neighbour{{Addr: rlocRemote4, IfIndex: 20, MAC: macUnderGW, Valid: true}}))
	round := func(what string) {
		t.Helper()
		for i := 0; i < n; i += ring.IdealBatchSize {
			var fs [][]byte
			for j := i; j < i+ring.IdealBatchSize; j++ {
				fs = append(fs, siteFrame(t, innerSpec{src: hostA, dst: dsts[j], payload: 20, sport: 7, dport: 9}))
			}
			r.fromSite(fs...)
			out := drain(r.core)
			if len(out) != len(fs) {
				t.Fatalf("%s: %d of %d frames encapsulated", what, len(out), len(fs))
			}
			for k, b := range out {
				if got, want := netip.AddrFrom4([4]byte(b[14+16:14+20])), netip.AddrFrom4([4]byte{100, 64, byte((i + k) >> 8), byte(i + k)}); got != want {
					t.Fatalf("%s: %v sent to RLOC %v, want %v", what, dsts[i+k], got, want)
				}
			}
		}
	}
	round("first round")
	ser, flows := r.w.hopSer, r.w.memo.flowHits
	round("second round")
	if r.w.hopSer != ser {
		t.Errorf("second round: %d next-hop memo entries filled again, want 0", r.w.hopSer-ser)
	}
	// The flow memo (four ways a set) holds nearly all of as many flows:
	// the few it does not take find their RLOC's entry filled.
	if got := r.w.memo.flowHits - flows; got < n*9/10 {
		t.Errorf("second round: %d flow memo hits, want at least %d of %d", got, n*9/10, n)
	}
}

// TestNextHopLayout pins the layout that keeps the per-packet loops to as
// few cache lines of a memo entry as they can: an entry is a whole number
// of 64-byte lines and the memos start on a line, so an entry's lines are
// its own; deliver4's fields lie in the entry's first line, encapLoop's in
// its first two. A field moved out of them, or a field added that shifts
// them, makes a site with thousands of hosts (or an ITR with thousands of
// RLOCs) miss the core's caches on more lines a packet.
func TestNextHopLayout(t *testing.T) {
	const line = 64
	var h nextHop
	if s := unsafe.Sizeof(h); s%line != 0 {
		t.Fatalf("nextHop is %d bytes, not a whole number of %d-byte lines (nextHopPad)", s, line)
	}
	type field struct {
		name     string
		off, len uintptr
	}
	check := func(who string, lines uintptr, fs []field) {
		t.Helper()
		for _, f := range fs {
			if f.off+f.len > lines*line {
				t.Errorf("%s reads nextHop.%s at bytes %d-%d, beyond the entry's first %d line(s)", who, f.name, f.off, f.off+f.len, lines)
			}
		}
	}
	check("deliver4", 1, []field{
		{"snap", unsafe.Offsetof(h.snap), unsafe.Sizeof(h.snap)},
		{"dkey", unsafe.Offsetof(h.dkey), unsafe.Sizeof(h.dkey)},
		{"hdr (Ethernet)", unsafe.Offsetof(h.hdr), wire.EthernetLen},
	})
	check("encapLoop", 2, []field{
		{"snap", unsafe.Offsetof(h.snap), unsafe.Sizeof(h.snap)},
		{"hdr (Ethernet, IPv4 template)", unsafe.Offsetof(h.hdr), frontV4},
		{"fast4", unsafe.Offsetof(h.fast4), unsafe.Sizeof(h.fast4)},
		{"nonce", unsafe.Offsetof(h.nonce), unsafe.Sizeof(h.nonce)},
		{"ser", unsafe.Offsetof(h.ser), unsafe.Sizeof(h.ser)},
		{"csBase", unsafe.Offsetof(h.csBase), unsafe.Sizeof(h.csBase)},
		{"maxInner", unsafe.Offsetof(h.maxInner), unsafe.Sizeof(h.maxInner)},
		{"out", unsafe.Offsetof(h.out), unsafe.Sizeof(h.out)},
	})
	r := newRig(t, nil)
	for name, p := range map[string]unsafe.Pointer{"hops": unsafe.Pointer(&r.w.hops[0]), "dels": unsafe.Pointer(&r.w.dels[0])} {
		if a := uintptr(p); a%line != 0 {
			t.Errorf("the worker's %s memo starts at %#x, not on a %d-byte line", name, a, line)
		}
	}
}

// TestDeliveryIPv6HostsShareSlots: IPv6 hosts whose first delivery slots
// coincide, in pairs, are each delivered to their own MAC address, also
// once their entries are filled and the batch's shortcut (deliver6)
// delivers them: it matches an entry by destination, not by the site's
// key alone (leaving that out sends the second host's packets to the
// first's MAC). Neither round after the first fills an entry again.
func TestDeliveryIPv6HostsShareSlots(t *testing.T) {
	var hosts []netip.Addr
	firsts := map[uint32]netip.Addr{}
	seconds := map[uint32]bool{}
	base := netip.MustParseAddr("2001:db8:1::").As16()
	for i := uint32(1); i < 1<<20 && len(hosts) < 128; i++ {
		a := base
		binary.BigEndian.PutUint32(a[12:], i)
		n := netip.AddrFrom16(a)
		fa, fb := delIndex(n)
		if fa == fb || seconds[fb] || seconds[fa] {
			continue
		}
		if m, ok := firsts[fa]; ok && m.IsValid() {
			hosts = append(hosts, m, n) // a pair: one first slot
			firsts[fa] = netip.Addr{}   // used up
			seconds[fb] = true
			_, mb := delIndex(m)
			seconds[mb] = true
		} else if !ok {
			firsts[fa] = n
		}
	}
	if len(hosts) < 128 {
		t.Fatalf("only %d hosts in pairs found", len(hosts))
	}
	r, round := deliveryRounds(t, hosts)
	round("first round")
	ser := r.w.hopSer
	round("second round")
	round("third round")
	if r.w.hopSer != ser {
		t.Fatalf("%d entries filled again after the first round", r.w.hopSer-ser)
	}
}
