package cache

import (
	"net/netip"
	"testing"
)

// TestReaderKeptTries: a Reader, which remembers its last instance between
// lookups, sees every published change of either family (insert, replace,
// delete, a more specific prefix), alternating instances and families, as
// Cache.Lookup does. (It pinned a variant that also kept the instance's
// tries while the generation stood; measured, it gained nothing and was
// taken out.)
func TestReaderKeptTries(t *testing.T) {
	c := New(Config{})
	rd := c.NewReader()
	defer rd.Close()
	apply := func(u Update) {
		t.Helper()
		if res := c.Apply([]Update{u}); res.Rejected != 0 {
			t.Fatal(res.Err)
		}
	}
	set := func(iid uint32, p string, rloc byte) {
		apply(Update{Key: IPKey(iid, netip.MustParsePrefix(p)), TTL: 600, RLOCs: []RLOC{{Addr: netip.AddrFrom4([4]byte{192, 0, 2, rloc}), Reachable: true}}})
	}
	del := func(iid uint32, p string) { apply(Update{Key: IPKey(iid, netip.MustParsePrefix(p)), Delete: true}) }
	want := func(iid uint32, a string, rloc byte) {
		t.Helper()
		d := netip.MustParseAddr(a)
		for range 2 { // the second lookup uses the kept tries
			e, ok := rd.Lookup(iid, d)
			e2, ok2 := c.Lookup(iid, d)
			if e != e2 || ok != ok2 {
				t.Fatalf("Reader.Lookup(%d, %v) = %v %v, Cache.Lookup %v %v", iid, d, e, ok, e2, ok2)
			}
			if got := byte(0); ok {
				got = e.Locators().RLOCs[0].Addr.As4()[3]
				if got != rloc {
					t.Fatalf("Reader.Lookup(%d, %v): RLOC .%d, want .%d", iid, d, got, rloc)
				}
			} else if rloc != 0 {
				t.Fatalf("Reader.Lookup(%d, %v) missed, want RLOC .%d", iid, d, rloc)
			}
		}
	}
	set(1, "10.0.0.0/8", 1)
	set(1, "2001:db8::/32", 2)
	want(1, "10.1.1.1", 1)
	want(1, "2001:db8::1", 2)
	set(1, "10.0.0.0/8", 3) // replaced
	want(1, "10.1.1.1", 3)
	set(1, "10.1.0.0/16", 4) // more specific
	want(1, "10.1.1.1", 4)
	want(1, "10.2.1.1", 3)
	set(2, "10.0.0.0/8", 5) // another instance
	want(2, "10.1.1.1", 5)
	want(1, "10.1.1.1", 4)
	del(1, "10.1.0.0/16")
	want(1, "10.1.1.1", 3)
	del(1, "2001:db8::/32")
	want(1, "2001:db8::1", 0)
	del(1, "10.0.0.0/8")
	want(1, "10.1.1.1", 0)
	want(2, "10.1.1.1", 5)
}
