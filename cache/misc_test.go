package cache

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/rloc-router/rloc/wire"
)

func TestMulticastLookup(t *testing.T) {
	c := New(Config{})
	mp := netip.MustParsePrefix
	rle := func(a string) []RLEHop { return []RLEHop{{Addr: netip.MustParseAddr(a), Level: 1}} }
	ups := []Update{
		{Key: MulticastKey(9, netip.Prefix{}, mp("224.0.0.0/4")), TTL: 5, RLE: rle("192.0.2.1")},           // (*, 224/4)
		{Key: MulticastKey(9, mp("10.0.0.0/8"), mp("239.0.0.0/8")), TTL: 5, RLE: rle("192.0.2.2")},         // (10/8, 239/8)
		{Key: MulticastKey(9, mp("10.1.0.0/16"), mp("239.0.0.0/8")), TTL: 5, RLE: rle("192.0.2.3")},        // (10.1/16, 239/8)
		{Key: MulticastKey(9, mp("10.1.0.0/16"), mp("239.1.1.0/24")), TTL: 5, RLE: rle("192.0.2.4")},       // (10.1/16, 239.1.1/24)
		{Key: MulticastKey(9, mp("0.0.0.0/0"), mp("239.2.0.0/16")), TTL: 5, RLE: rle("192.0.2.5")},         // (*, 239.2/16)
		{Key: MulticastKey(9, mp("2001:db8::/32"), mp("ff3e::/16")), TTL: 5, RLE: rle("2001:db8:ffff::1")}, // IPv6 (S,G)
	}
	if res := c.Apply(ups); res.Inserted != len(ups) {
		t.Fatalf("inserted %d of %d: %v", res.Inserted, len(ups), res.Err)
	}
	cases := []struct{ src, grp, want string }{
		{"10.1.2.3", "239.1.1.1", "192.0.2.4"}, // longest G with a matching S
		{"10.2.2.3", "239.1.1.1", "192.0.2.2"}, // no S match at 239.1.1/24: covering G 239/8, S 10/8
		{"10.1.2.3", "239.9.9.9", "192.0.2.3"}, // longest S within 239/8
		{"11.0.0.1", "239.1.1.1", "192.0.2.1"}, // no (S,G): (*,G) of the covering 224/4
		{"10.1.2.3", "239.2.3.4", "192.0.2.3"}, // (S,G) of 239/8 before (*, 239.2/16)
		{"11.0.0.1", "239.2.3.4", "192.0.2.5"}, // (*, 239.2/16) before (*, 224/4)
		{"11.0.0.1", "225.0.0.1", "192.0.2.1"},
		{"10.1.2.3", "10.0.0.1", ""}, // not a group in any entry
		{"2001:db8::1", "ff3e::1234", "2001:db8:ffff::1"},
		{"2001:db9::1", "ff3e::1234", ""},
	}
	for _, tc := range cases {
		e, ok := c.LookupMulticast(9, netip.MustParseAddr(tc.src), netip.MustParseAddr(tc.grp))
		if tc.want == "" {
			if ok {
				t.Errorf("(%s,%s) found %v, want miss", tc.src, tc.grp, e.Key())
			}
			continue
		}
		if !ok || e.RLE()[0].Addr.String() != tc.want {
			got := "miss"
			if ok {
				got = e.RLE()[0].Addr.String()
			}
			t.Errorf("(%s,%s) -> %s, want %s", tc.src, tc.grp, got, tc.want)
		}
	}
	// Delete (10.1/16, 239.1.1/24): that flow falls back to (10.1/16, 239/8).
	c.Apply([]Update{{Key: MulticastKey(9, mp("10.1.0.0/16"), mp("239.1.1.0/24")), Delete: true}})
	if e, ok := c.LookupMulticast(9, netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("239.1.1.1")); !ok || e.RLE()[0].Addr.String() != "192.0.2.3" {
		t.Fatal("after delete: no fallback to the covering (S,G)")
	}
	if st := c.Stats(); st.Multicast != 5 || st.Entries != 5 {
		t.Fatalf("stats %+v, want 5 multicast entries", st)
	}
	n := 0
	c.Walk(func(e *Entry) bool {
		if e.Key().Kind != KindMulticast {
			t.Errorf("Walk: %v is not multicast", e.Key())
		}
		n++
		return true
	})
	if n != 5 {
		t.Fatalf("Walk saw %d entries, want 5", n)
	}
	// Invalid multicast keys are rejected.
	res := c.Apply([]Update{
		{Key: MulticastKey(9, netip.Prefix{}, mp("10.0.0.0/8")), TTL: 1},       // G not multicast
		{Key: MulticastKey(9, mp("2001:db8::/32"), mp("239.0.0.0/8")), TTL: 1}, // families differ
	})
	if res.Rejected != 2 || res.Err != ErrInvalidKey {
		t.Fatalf("invalid multicast keys: %+v", res)
	}
}

func TestMACLookup(t *testing.T) {
	c := New(Config{})
	m1 := [6]byte{0x02, 0, 0, 0, 0, 1}
	m2 := [6]byte{0x02, 0, 0, 0, 0, 2}
	c.Apply([]Update{{Key: MACKey(4, m1), TTL: 5, RLOCs: up1}})
	e, ok := c.LookupMAC(4, m1)
	if !ok || e.Key() != MACKey(4, m1) || e.Key().String() != "[4]02:00:00:00:00:01" {
		t.Fatalf("LookupMAC(m1) = %v %v", e, ok)
	}
	if _, ok := c.LookupMAC(4, m2); ok {
		t.Fatal("LookupMAC(m2) hit without an entry")
	}
	if _, ok := c.LookupMAC(5, m1); ok {
		t.Fatal("LookupMAC hit in another instance-ID")
	}
	if _, ok := c.Lookup(4, netip.MustParseAddr("200::")); ok {
		t.Fatal("MAC entry visible to IPv6 lookups")
	}
}

func TestInstanceIsolationAndNegative(t *testing.T) {
	c := New(Config{})
	p := netip.MustParsePrefix("10.0.0.0/8")
	c.Apply([]Update{
		{Key: IPKey(1, p), TTL: 5, RLOCs: up1},
		{Key: IPKey(2, p), TTL: 5, Action: wire.ActionDropPolicyDenied},
	})
	e1, ok1 := c.Lookup(1, netip.MustParseAddr("10.1.1.1"))
	e2, ok2 := c.Lookup(2, netip.MustParseAddr("10.1.1.1"))
	_, ok3 := c.Lookup(3, netip.MustParseAddr("10.1.1.1"))
	if !ok1 || e1.Negative() || !ok2 || !e2.Negative() || e2.Action() != wire.ActionDropPolicyDenied || ok3 {
		t.Fatalf("iid 1: %v %v; iid 2: %v %v; iid 3 hit %v", e1, ok1, e2, ok2, ok3)
	}
	if e2.Select(1) != nil {
		t.Fatal("negative entry selected an RLOC")
	}
	res := c.Apply([]Update{
		{Key: IPKey(1, netip.Prefix{}), TTL: 1},
		{Key: IPKey(1, netip.MustParsePrefix("::ffff:10.0.0.0/104")), TTL: 1},
		{Key: IPKey(1, p), TTL: 1, RLOCs: []RLOC{{}}},
	})
	if res.Rejected != 3 {
		t.Fatalf("bad updates: %+v, want 3 rejected", res)
	}
}

func TestTemplatesAndInterning(t *testing.T) {
	calls := 0
	c := New(Config{BuildTemplate: func(iid uint32, fam Family, r *RLOC) []byte {
		calls++
		return append([]byte{byte(iid), byte(fam)}, r.Addr.AsSlice()...)
	}})
	set := []RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 1, Reachable: true}, {Addr: netip.MustParseAddr("2001:db8::1"), Priority: 1, Weight: 1, Reachable: true}}
	var ups []Update
	for i := range 1000 {
		ups = append(ups, Update{Key: IPKey(7, v4pfx(0x0a000000+i<<8, 24)), TTL: 5, RLOCs: set})
	}
	ups = append(ups, Update{Key: IPKey(7, netip.MustParsePrefix("2001:db8:1::/48")), TTL: 5, RLOCs: set})
	c.Apply(ups)
	if calls != 4 || c.Stats().LocatorSets != 2 {
		t.Fatalf("builder called %d times for %d sets; want 4 calls and 2 sets (IPv4 and IPv6 EIDs)", calls, c.Stats().LocatorSets)
	}
	e1, _ := c.Lookup(7, netip.MustParseAddr("10.0.1.1"))
	e2, _ := c.Lookup(7, netip.MustParseAddr("10.0.2.1"))
	e6, _ := c.Lookup(7, netip.MustParseAddr("2001:db8:1::1"))
	if e1.Locators() != e2.Locators() || e1.Locators() == e6.Locators() {
		t.Fatal("locator sets not shared as expected")
	}
	if got := e6.RLOCs()[1].Template; string(got) != string(append([]byte{7, byte(FamilyIPv6)}, netip.MustParseAddr("2001:db8::1").AsSlice()...)) {
		t.Fatalf("template %x", got)
	}
	// Deleting every user releases the set.
	for i := range ups {
		ups[i].Delete = true
	}
	c.Apply(ups)
	if st := c.Stats(); st.LocatorSets != 0 || st.Entries != 0 {
		t.Fatalf("after deleting all: %+v", st)
	}
}

func TestLookupAllocatesNothing(t *testing.T) {
	c := New(Config{})
	c.Apply([]Update{
		{Key: IPKey(1, netip.MustParsePrefix("10.0.0.0/8")), TTL: 5, RLOCs: []RLOC{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 50, Reachable: true}, {Addr: netip.MustParseAddr("192.0.2.2"), Priority: 1, Weight: 50, Reachable: true}}},
		{Key: IPKey(1, netip.MustParsePrefix("2001:db8::/32")), TTL: 5, RLOCs: up1},
		{Key: MACKey(1, [6]byte{2, 0, 0, 0, 0, 1}), TTL: 5, RLOCs: up1},
		{Key: MulticastKey(1, netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("239.0.0.0/8")), TTL: 5, RLE: []RLEHop{{Addr: netip.MustParseAddr("192.0.2.9")}}},
	})
	a4, a6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("2001:db8::1")
	src, grp := netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("239.1.2.3")
	miss := netip.MustParseAddr("11.1.1.1")
	var sink int
	allocs := testing.AllocsPerRun(1000, func() {
		e, ok := c.Lookup(1, a4)
		if ok && e.Select(12345) != nil {
			sink++
		}
		if _, ok := c.Lookup(1, a6); ok {
			sink++
		}
		if _, ok := c.Lookup(1, miss); ok {
			sink++
		}
		if _, ok := c.LookupMAC(1, [6]byte{2, 0, 0, 0, 0, 1}); ok {
			sink++
		}
		if _, ok := c.LookupMulticast(1, src, grp); ok {
			sink++
		}
		if _, ok := c.Lookup(99, a4); ok {
			sink++
		}
	})
	if allocs != 0 {
		t.Fatalf("lookups allocate %.1f times per run, want 0", allocs)
	}
	if sink != 1001*4 {
		t.Fatalf("unexpected hit count %d", sink)
	}
}

// TestEntrySize guards the memory budget (1M prefixes in 128 MiB): an entry
// must stay in the 48-byte size class.
func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(Entry{}); s > 48 {
		t.Fatalf("Entry is %d bytes, want <= 48", s)
	}
}

// TestTemplateSlots: the templates of the installed sets have distinct
// numbers (RLOC.TemplateSlot) counted from 1, a set's numbers are given
// to later sets once it is gone, a template the cache did not build has
// 0, and so does one of a cache without a builder.
func TestTemplateSlots(t *testing.T) {
	c := New(Config{BuildTemplate: func(_ uint32, _ Family, r *RLOC) []byte {
		if r.Addr.Is6() {
			return nil // no outer header of this family
		}
		return r.Addr.AsSlice()
	}})
	up := func(i int, del bool) Update {
		return Update{Key: IPKey(7, v4pfx(0x0a000000+i<<8, 24)), TTL: 5, Delete: del, RLOCs: []RLOC{
			{Addr: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), Priority: 1, Weight: 1, Reachable: true},
			{Addr: netip.MustParseAddr("2001:db8::1"), Priority: 1, Weight: 1, Reachable: true}}}
	}
	slots := func(from, to int) map[uint32]int {
		t.Helper()
		m := map[uint32]int{}
		for i := from; i < to; i++ {
			e, ok := c.Lookup(7, netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
			if !ok {
				t.Fatalf("set %d not installed", i)
			}
			if s := e.RLOCs()[1].TemplateSlot(); s != 0 {
				t.Fatalf("set %d: the IPv6 RLOC without a template has number %d", i, s)
			}
			s := e.RLOCs()[0].TemplateSlot()
			if j, ok := m[s]; ok || s == 0 {
				t.Fatalf("sets %d and %d: template number %d", j, i, s)
			}
			m[s] = i
		}
		return m
	}
	var ups []Update
	for i := range 300 {
		ups = append(ups, up(i, false))
	}
	c.Apply(ups)
	first := slots(0, 300)
	for s := range first {
		if s > 300 {
			t.Fatalf("number %d for 300 templates", s)
		}
	}
	// 100 sets go, 100 others come: they take the numbers given back.
	ups = ups[:0]
	for i := range 100 {
		ups = append(ups, up(i, true), up(1000+i, false))
	}
	c.Apply(ups)
	kept, added := slots(100, 300), slots(1000, 1100)
	for s := range added {
		if _, ok := kept[s]; ok || s > 300 {
			t.Fatalf("a new set's template took number %d (in use: %v; at most 300 given)", s, ok)
		}
	}

	plain := New(Config{})
	plain.Apply([]Update{up(1, false)})
	if e, _ := plain.Lookup(7, netip.MustParseAddr("10.0.1.1")); e.RLOCs()[0].TemplateSlot() != 0 {
		t.Fatalf("no builder: template number %d", e.RLOCs()[0].TemplateSlot())
	}
}
