package cache

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestFamiliesShareOneTrie: an instance keeps IPv4 and IPv6 prefixes in one
// trie (bart's two roots), so no lookup tests the family; a default route of
// one family never answers the other, and batches that mix the families
// (filled in place while empty, persistent while small, cloned once large)
// leave each family as if it were alone. By Cache.Lookup, Reader.Lookup,
// Get and Walk.
func TestFamiliesShareOneTrie(t *testing.T) {
	c, _, rd := readerCache(13_000_000)
	const iid = 9
	want := map[netip.Prefix]byte{} // what is installed: prefix -> RLOC's last octet
	up := func(p string, rloc byte) Update {
		return Update{Key: IPKey(iid, netip.MustParsePrefix(p)), TTL: 600, RLOCs: []RLOC{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, rloc}), Reachable: true}}}
	}
	del := func(p string) Update { return Update{Key: IPKey(iid, netip.MustParsePrefix(p)), Delete: true} }
	apply := func(ups ...Update) {
		t.Helper()
		if res := c.Apply(ups); res.Rejected != 0 {
			t.Fatal(res.Err)
		}
		for _, u := range ups {
			if u.Delete {
				delete(want, u.Key.Prefix)
			} else {
				want[u.Key.Prefix] = u.RLOCs[0].Addr.As4()[3]
			}
		}
	}
	whole := func(step string) {
		t.Helper()
		for p, rloc := range want {
			if e, ok := c.Get(IPKey(iid, p)); !ok || e.Locators().RLOCs[0].Addr.As4()[3] != rloc {
				t.Fatalf("%s: Get(%v) = %v, %v; want RLOC .%d", step, p, e, ok, rloc)
			}
		}
		n := 0
		c.Walk(func(e *Entry) bool {
			if r, ok := want[e.Key().Prefix]; !ok || e.Locators().RLOCs[0].Addr.As4()[3] != r {
				t.Fatalf("%s: Walk saw %v, not installed", step, e.Key())
			}
			n++
			return true
		})
		if n != len(want) || c.Len() != len(want) {
			t.Fatalf("%s: Walk saw %d entries, Len %d, want %d", step, n, c.Len(), len(want))
		}
	}

	var big []Update // over the clone threshold: one private copy, in place
	for i := range 40 {
		big = append(big, up(fmt.Sprintf("172.16.%d.0/24", i), byte(10+i)), up(fmt.Sprintf("2001:db8:%x::/48", i), byte(60+i)))
	}
	type probe struct {
		what, dst string
		rloc      byte // 0: a miss
	}
	for _, step := range []struct {
		name   string
		ups    []Update
		probes []probe
	}{
		{"first batch (empty trie: filled in place)", []Update{up("10.0.0.0/8", 1), up("2001:db8::/32", 2), up("0.0.0.0/0", 3)}, []probe{
			{"v4", "10.1.1.1", 1}, {"v4 default", "11.1.1.1", 3}, {"v6", "2001:db8::1", 2},
			{"the v4 default is not a v6 one", "2001:db9::1", 0},
		}},
		{"small batch (persistent, pending inserts)", []Update{up("::/0", 4), del("0.0.0.0/0"), up("10.1.0.0/16", 5)}, []probe{
			{"v6 default", "2001:db9::1", 4}, {"the v6 default is not a v4 one", "11.1.1.1", 0},
			{"v4 inserted beside a v6 default", "10.1.1.1", 5}, {"v4", "10.2.1.1", 1}, {"v6 beside its default", "2001:db8::1", 2},
		}},
		{"large batch (cloned)", append(big, del("::/0"), del("10.0.0.0/8"), up("0.0.0.0/0", 6)), []probe{
			{"v4 in the cloned trie", "172.16.7.9", 17}, {"v6 in the cloned trie", "2001:db8:27::1", 99},
			{"v6 default deleted", "2001:db9::1", 0}, {"v4 default again", "10.2.1.1", 6},
			{"v4 /16 kept", "10.1.1.1", 5}, {"v6 /32 kept", "2001:db8:ffff::1", 2},
		}},
	} {
		apply(step.ups...)
		for _, pr := range step.probes {
			if err := lookBoth(c, rd, iid, netip.MustParseAddr(pr.dst), pr.rloc); err != nil {
				t.Fatalf("%s, %s: %v", step.name, pr.what, err)
			}
		}
		whole(step.name)
	}
}

// TestFreeSlotInstance: a free direct slot holds the Cache's placeholder
// instance (empty tables, iid 0xFFFFFFFF), which maps to the last slot. A
// lookup of that iid misses while no instance has it, whether the slot is
// free or held by another instance; an instance with that iid is found in
// the slot or beside it; the placeholder's tables stay empty.
func TestFreeSlotInstance(t *testing.T) {
	const top = ^uint32(0)
	a := netip.MustParseAddr("10.1.1.1")
	for _, order := range [][]uint32{{top % dirDirect, top}, {top, top % dirDirect}} {
		c, _, rd := readerCache(14_000_000)
		look := func(iid uint32, want byte) {
			t.Helper()
			if err := lookBoth(c, rd, iid, a, want); err != nil {
				t.Fatalf("order %v, iid %#x: %v", order, iid, err)
			}
		}
		look(top, 0)
		for n, iid := range order {
			u := Update{Key: IPKey(iid, netip.MustParsePrefix("0.0.0.0/0")), TTL: 600, RLOCs: []RLOC{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(n + 1)}), Reachable: true}}}
			if res := c.Apply([]Update{u}); res.Inserted != 1 {
				t.Fatal(res.Err)
			}
			for m, iid := range order {
				want := byte(m + 1)
				if m > n {
					want = 0
				}
				look(iid, want)
			}
		}
		if c.none.ip.p.Load().Size() != 0 || c.none.mac.p.Load().Size() != 0 {
			t.Fatalf("order %v: the placeholder instance's tables were written", order)
		}
		rd.Close()
	}
}

// TestReaderBitsAfterGrowth: a Reader tests a hit's bit in the bitmap its
// last Flush marked. When the writer has replaced its bitmap since (the ids
// outgrew it), a hit with an id beyond that bitmap is noted, not dropped,
// the next Flush marks the current bitmap and tests use it from then on,
// and the fold counts the hit; a hit whose bit is set in the replaced
// bitmap is not noted again and is still counted (the writer folds the
// replaced bitmap too).
func TestReaderBitsAfterGrowth(t *testing.T) {
	c, clk, r := readerCache(12_000_000)
	dA := netip.MustParseAddr("10.1.1.1")
	ups := []Update{{Key: IPKey(5, netip.PrefixFrom(dA, 8).Masked()), TTL: 600, RLOCs: up1}}
	c.Apply(ups)
	a, _ := c.Get(ups[0].Key)
	r.Lookup(5, dA)
	r.Flush() // a's bit set in the first bitmap
	ups = ups[:0]
	for i := range 1 << chunkBits { // ids beyond the first bitmap
		ups = append(ups, Update{Key: IPKey(5, v4pfx(0x0c000000+i<<8, 24)), TTL: 600, RLOCs: up1})
	}
	c.Apply(ups)
	kB := ups[len(ups)-1].Key
	b, _ := c.Get(kB)
	if int(b.id>>6) < len(r.bits) {
		t.Fatalf("id %d is inside the Reader's bitmap of %d words: the test needs one beyond", b.id, len(r.bits))
	}
	dB := kB.Prefix.Addr().Next()
	clk.t = clk.t.Add(time.Hour)
	c.Tick(clk.t)
	used := clk.t
	r.Lookup(5, dA)
	if r.n != 0 {
		t.Fatalf("%d ids noted for a hit flushed into the replaced bitmap, want 0", r.n)
	}
	r.Lookup(5, dB)
	if r.n != 1 || r.ids[0] != b.id {
		t.Fatalf("noted %v for a hit beyond the Reader's bitmap, want [%d]", r.ids[:r.n], b.id)
	}
	r.Flush()
	for range 3 {
		r.Lookup(5, dB)
	}
	if r.n != 0 {
		t.Fatalf("%d ids noted after the Flush marked the current bitmap, want 0", r.n)
	}
	clk.t = clk.t.Add(time.Second)
	c.Expire(clk.t) // folds
	for _, e := range []*Entry{a, b} {
		if e.used.Load() != c.epochAt(used) {
			t.Fatalf("%v: mark %d after the fold, want epoch %d", e.Key(), e.used.Load(), c.epochAt(used))
		}
	}
}

// lookBoth looks dst up in iid by Cache.Lookup and by Reader.Lookup and
// reports a difference from want: the last octet of the entry's first RLOC,
// 0 for a miss.
func lookBoth(c *Cache, rd *Reader, iid uint32, dst netip.Addr, want byte) error {
	for i, look := range []func(uint32, netip.Addr) (*Entry, bool){c.Lookup, rd.Lookup} {
		e, ok := look(iid, dst)
		if ok != (want != 0) || ok && e.Locators().RLOCs[0].Addr.As4()[3] != want {
			return fmt.Errorf("lookup %d of %v = %v, %v; want RLOC .%d (0: a miss)", i, dst, e, ok, want)
		}
	}
	return nil
}
