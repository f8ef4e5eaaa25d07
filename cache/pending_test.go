package cache

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestBatchInsertsMergedInOrder: in a shard the batch does not own, inserts
// wait in the batch's pending table and deletes go to the shared one, so
// the order of a batch's updates to one prefix must still decide: delete
// then insert leaves the insert, insert then delete leaves nothing, two
// inserts leave the second, and the writer's own reads within the batch
// (an update of an entry it inserted earlier in the batch) see the pending
// ones. Batches of 50 stay below the clone threshold of a 10k-prefix shard
// (pending all the way); a batch of 2000 crosses it with inserts pending
// (they are merged into the private copy). Every batch is checked against a
// plain map of what should be installed, by Get and by Lookup.
func TestBatchInsertsMergedInOrder(t *testing.T) {
	const iid = 9
	r := rand.New(rand.NewPCG(3, 4))
	c := New(Config{MaxEntries: 1 << 16})
	want := map[netip.Prefix]netip.Addr{} // prefix -> its RLOC
	rloc := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	pfx := func() netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(r.IntN(64)), byte(r.IntN(256)), 0}), 24)
	}
	var ups []Update
	for len(want) < 10_000 {
		p := pfx()
		if _, ok := want[p]; !ok {
			want[p] = rloc(1)
			ups = append(ups, Update{Key: IPKey(iid, p), TTL: 600, RLOCs: []RLOC{{Addr: rloc(1), Reachable: true}}})
		}
	}
	if res := c.Apply(ups); res.Rejected != 0 {
		t.Fatal(res.Err)
	}
	check := func(round int) {
		t.Helper()
		if c.Len() != len(want) {
			t.Fatalf("round %d: %d entries, want %d", round, c.Len(), len(want))
		}
		for p, a := range want {
			e, ok := c.Get(IPKey(iid, p))
			if !ok || e.Locators().RLOCs[0].Addr != a {
				t.Fatalf("round %d: Get(%v) = %v, want RLOC %v", round, p, ok, a)
			}
			if e2, ok := c.Lookup(iid, p.Addr().Next()); !ok || e2 != e {
				t.Fatalf("round %d: Lookup in %v found %v, want the entry", round, p, ok)
			}
		}
	}
	check(0)
	for round := 1; round <= 30; round++ {
		n := 50
		if round%10 == 0 {
			n = 2000
		}
		ups = ups[:0]
		for len(ups) < n {
			p := pfx()
			k := IPKey(iid, p)
			a := rloc(2 + r.IntN(200))
			ins := Update{Key: k, TTL: 600, RLOCs: []RLOC{{Addr: a, Reachable: true}}}
			switch r.IntN(4) {
			case 0: // delete, then insert again
				ups = append(ups, Update{Key: k, Delete: true}, ins)
				want[p] = a
			case 1: // insert (or replace), then delete
				ups = append(ups, ins, Update{Key: k, Delete: true})
				delete(want, p)
			case 2: // two inserts: the second stays
				b := rloc(2 + r.IntN(200))
				ups = append(ups, ins, Update{Key: k, TTL: 600, RLOCs: []RLOC{{Addr: b, Reachable: true}}})
				want[p] = b
			default: // one insert or replacement
				ups = append(ups, ins)
				want[p] = a
			}
		}
		c.Apply(ups)
		check(round)
	}
}

// TestReaderFollowsInstances: a Reader remembers the last instance it
// resolved; lookups alternating between instance-IDs, and in an
// instance-ID that did not exist at the Reader's previous lookup and was
// created since, answer as Cache.Lookup does.
func TestReaderFollowsInstances(t *testing.T) {
	c := New(Config{})
	rd := c.NewReader()
	defer rd.Close()
	add := func(iid uint32, p string, rloc byte) {
		t.Helper()
		u := Update{Key: IPKey(iid, netip.MustParsePrefix(p)), TTL: 600, RLOCs: []RLOC{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, rloc}), Reachable: true}}}
		if res := c.Apply([]Update{u}); res.Inserted != 1 {
			t.Fatal(res.Err)
		}
	}
	same := func(iid uint32, a string) {
		t.Helper()
		d := netip.MustParseAddr(a)
		e1, ok1 := rd.Lookup(iid, d)
		e2, ok2 := c.Lookup(iid, d)
		if e1 != e2 || ok1 != ok2 {
			t.Fatalf("Reader.Lookup(%d, %v) = %v %v, Cache.Lookup %v %v", iid, d, e1, ok1, e2, ok2)
		}
	}
	add(1, "10.0.0.0/8", 1)
	same(1, "10.1.1.1")
	same(2, "10.1.1.1") // no instance 2 yet: remembered as none
	same(2, "10.1.1.1")
	add(2, "10.0.0.0/8", 2) // instance 2 created: a new directory
	if e, ok := rd.Lookup(2, netip.MustParseAddr("10.1.1.1")); !ok || e.Locators().RLOCs[0].Addr.As4()[3] != 2 {
		t.Fatalf("Reader.Lookup in the new instance 2 = %v, %v", e, ok)
	}
	for i := range 10 {
		same(uint32(1+i%2), "10.1.1.1")
	}
	add(1, "10.1.0.0/16", 3) // a change within the remembered instance
	same(1, "10.1.1.1")
}

// TestDirectoryCollisions: instance-IDs that share a direct slot of the
// directory (same low bits) are all found, by Cache.Lookup, Reader.Lookup,
// Get and Walk, whichever of them holds the slot; an absent instance-ID
// whose slot holds another one misses.
func TestDirectoryCollisions(t *testing.T) {
	c := New(Config{})
	rd := c.NewReader()
	defer rd.Close()
	iids := []uint32{dirDirect, 0, 2 * dirDirect, 7, 7 + dirDirect, 1<<24 - dirDirect + 7}
	a := netip.MustParseAddr("10.1.1.1")
	for _, iid := range []uint32{0, dirDirect} { // free slot 0: iid 0 matches its zero key
		if e, ok := c.Lookup(iid, a); ok {
			t.Fatalf("Cache.Lookup(%d) in an empty cache = %v", iid, e)
		}
		if e, ok := rd.Lookup(iid, a); ok {
			t.Fatalf("Reader.Lookup(%d) in an empty cache = %v", iid, e)
		}
	}
	for n, iid := range iids {
		u := Update{Key: IPKey(iid, netip.MustParsePrefix("10.0.0.0/8")), TTL: 600, RLOCs: []RLOC{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(n)}), Reachable: true}}}
		if res := c.Apply([]Update{u}); res.Inserted != 1 {
			t.Fatal(res.Err)
		}
		for m, iid := range iids {
			want := m <= n
			for _, look := range []func(uint32, netip.Addr) (*Entry, bool){c.Lookup, rd.Lookup} {
				e, ok := look(iid, a)
				if ok != want || ok && e.Locators().RLOCs[0].Addr.As4()[3] != byte(m) {
					t.Fatalf("after %d instances: lookup in %d = %v, %v; want found %v with RLOC .%d", n+1, iid, e, ok, want, m)
				}
			}
		}
		walked := 0
		c.Walk(func(*Entry) bool { walked++; return true })
		if walked != n+1 {
			t.Fatalf("Walk saw %d entries, want %d", walked, n+1)
		}
	}
	for _, iid := range []uint32{3 * dirDirect, 7 + 2*dirDirect, 1} {
		if e, ok := c.Lookup(iid, a); ok {
			t.Fatalf("Cache.Lookup in absent %d = %v", iid, e)
		}
		if e, ok := rd.Lookup(iid, a); ok {
			t.Fatalf("Reader.Lookup in absent %d = %v", iid, e)
		}
	}
}
